"""Flash sales and lotteries on the console's mall page, with the stock left refreshed without a reload: the
page lists the time-limited rewards with a limited stock (not the others) and every lottery's prizes, and
/console/mall/stock.json — which the page polls — follows the redemptions as they happen."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from jifen.db import utcnow
from jifen.web.i18n import LANGUAGES
from tests.conftest import api_key, keyed
from tests.support.browser import chromium_page, need_chromium, screenshots, serving, sign_in_page
from tests.support.console_login import PASSWORD, add_user, sign_in
from tests.support.intake import add_members, configure, event, send
from tests.support.raw_codes import raw_codes, shown_text

ADDRESS = {"name": "王小明", "phone": "13800001111", "line": "上海市浦东新区世纪大道100号"}


@pytest.fixture
def mall(app, factory):
    now = utcnow()
    configure(factory, {"pending_days": {}}, now=now - dt.timedelta(days=30))
    add_members(factory, "alice")
    send(factory, event("alice", amount="3000", at=now - dt.timedelta(days=1)), now=now)
    api = keyed(TestClient(app))
    admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}

    def post(url, body):
        r = api.post(url, json=body, headers=admin)
        assert r.status_code in (200, 201), (url, r.text)
        return r.json()

    reward = {"kind": "physical", "category": "实物", "points": 100}
    post("/v1/rewards", reward | {"code": "flash_cup", "name": "限时马克杯", "stock": 3,
                                  "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
                                  "ends_at": (now + dt.timedelta(hours=2)).isoformat()})
    post("/v1/rewards", reward | {"code": "mug", "name": "常规马克杯", "stock": 50})  # no window: not a flash sale
    post("/v1/rewards", reward | {"code": "old_sale", "name": "已结束", "stock": 5,
                                  "ends_at": (now - dt.timedelta(hours=1)).isoformat()})
    post("/v1/lotteries", {"code": "spring", "name": "春季抽奖", "cost": 20, "prizes": [
        {"name": "电饭煲", "weight": 1, "stock": 2, "value": "199"}, {"name": "谢谢参与", "weight": 99}]})
    with TestClient(app) as console:
        assert sign_in(console, add_user(app, "operator", "xiaowang")).status_code == 303
        yield console, lambda: post("/v1/redemptions", {"member_id": "alice", "reward": "flash_cup",
                                                        "address": ADDRESS})
    api.close()


def test_flash_sales_and_lotteries_are_listed_with_their_stock(mall):
    console, redeem = mall
    page = console.get("/console/mall").text
    flash = page.split('id="flash-sales"', 1)[1].split("</section>", 1)[0]
    assert "限时马克杯" in flash and "常规马克杯" not in flash and "已结束" not in flash
    assert 'data-reward-stock="flash_cup">3<' in flash
    lotteries = page.split('id="lotteries"', 1)[1].split("</section>", 1)[0]
    assert "春季抽奖" in lotteries and "电饭煲" in lotteries and "∞" in lotteries  # 谢谢参与: unlimited
    live = console.get("/console/mall/stock.json")
    assert live.headers["cache-control"] == "no-store"
    body = live.json()
    assert body["rewards"] == {"flash_cup": {"stock": 3, "sold": 0}}
    assert sorted(body["prizes"].values(), key=str) == [2, None]
    redeem()
    assert console.get("/console/mall/stock.json").json()["rewards"] == {"flash_cup": {"stock": 2, "sold": 1}}


def test_the_stock_needs_a_session(app):
    with TestClient(app) as anonymous:
        r = anonymous.get("/console/mall/stock.json", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_page_shows_the_stock_falling_without_a_reload(mall, app, tmp_path):
    need_chromium()
    _, redeem = mall
    with serving(app) as base, chromium_page(1280, 1000) as page:
        sign_in_page(page, base, "xiaowang", PASSWORD)
        page.goto(f"{base}/console/mall")
        cell = page.locator('[data-reward-stock="flash_cup"]')
        assert cell.text_content() == "3"
        page.evaluate("window.loaded = true")  # gone if the page reloads
        redeem()
        page.wait_for_function("document.querySelector('[data-reward-stock=\"flash_cup\"]').textContent === '2'",
                               timeout=30_000)
        assert page.locator('[data-reward-sold="flash_cup"]').text_content() == "1"
        assert page.evaluate("window.loaded") is True  # the same page: updated in place
        page.locator("#flash-sales").screenshot(path=screenshots(tmp_path) / "console-mall-live.png")


def test_the_live_sections_show_no_raw_code_in_any_language(mall):
    console, _ = mall
    for lang in LANGUAGES:
        page = console.get("/console/mall", params={"lang": lang})
        assert page.status_code == 200 and raw_codes(shown_text(page.text), lang) == set(), lang
