"""A campaign's double-value redemption days wherever a redemption is priced: the catalogue API for a member,
POST /v1/redemptions (the group-commit path), the member centre's mall, its confirmation step and the
order, and — in Chromium on a phone — the halved price beside the struck-through normal one and the
campaign's name."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from jifen.db import utcnow
from tests.conftest import api_key, keyed
from tests.support.browser import chromium, need_chromium, screenshots, serving
from tests.web.test_member_centre import available, centre, enter, key_of, token  # noqa: F401 - the fixture

OFFER = "会员积分翻倍日"


def launch(app, **fields) -> dict:
    now = utcnow()
    body = {"code": "half", "name": OFFER, "effect": {"double_value": {}}, "budget": 100_000,
            "starts_at": (now - dt.timedelta(hours=1)).isoformat(), "ends_at": (now + dt.timedelta(days=1)).isoformat(),
            "sponsor": {"name": "伊利", "share": "0.4"}} | fields
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert client.post("/v1/campaigns", json=body, headers=admin).status_code == 201
        return client.post("/v1/campaigns/half/launch", headers=admin).json()


def test_bad_double_value_is_refused_with_nothing_created(centre):  # noqa: F811 - the fixture
    app, _ = centre
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        now = utcnow()
        body = {"code": "half", "name": OFFER, "budget": 100, "starts_at": now.isoformat(),
                "ends_at": (now + dt.timedelta(days=1)).isoformat()}
        for effect in ({"double_value": {"weekdays": [0]}}, {"double_value": {}, "bonus": 5},
                       {"double_value": {"factor": "0.5"}}, {"double_value": {}, "channels": ["app"]}):
            r = client.post("/v1/campaigns", json=body | {"effect": effect}, headers=admin)
            assert r.status_code == 422 and r.json()["error"]["code"] and r.json()["error"]["message"]
        assert client.get("/v1/campaigns", headers=admin).json() == []


def test_the_catalogue_and_the_redemption_api_price_the_members_offer(centre):  # noqa: F811 - the fixture
    app, ledger = centre
    launch(app)
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        mine = {r["code"]: r for r in client.get("/v1/rewards", params={"member_id": "M1", "limit": 200},
                                                 headers=admin).json()}
        assert (mine["c50"]["price_now"], mine["c50"]["price_normal"]) == (250, 500)
        assert mine["c50"]["campaign"] == {"code": "half", "name": OFFER, "factor": "2"}
        listed = {r["code"]: r for r in client.get("/v1/rewards", params={"limit": 200}, headers=admin).json()}
        assert listed["c50"]["price_now"] == 500 and "campaign" not in listed["c50"]  # no member: the list price
        r = client.post("/v1/redemptions", json={"member_id": "M1", "reward": "c50"}, headers=admin)
        assert r.status_code == 201
        assert (r.json()["points"], r.json()["campaign"]) == (250, {"code": "half", "points_saved": 250})
        assert available(ledger) == 1200 - 250
        report = client.get("/v1/campaigns/half/report", headers=admin).json()
        assert (report["cost"]["points_saved"], report["cost"]["sponsored_points"], report["participants"]) == (250, 100, 1)
        assert report["budget"]["used"] == 250
        refund = client.post(f"/v1/redemptions/{r.json()['id']}/refund", headers=admin)
        assert refund.status_code == 200 and available(ledger) == 1200
        assert client.get("/v1/campaigns/half/report", headers=admin).json()["budget"]["used"] == 0


def test_the_member_centre_shows_the_halved_price_struck_normal_price_and_campaign(centre):  # noqa: F811
    app, ledger = centre
    launch(app)
    with TestClient(app) as client:
        csrf = enter(client, app)
        mall = client.get("/m/mall").text
        assert '<span class="price" data-price="250">250 积分 <s class="muted" data-was="500">原价 500</s></span>' in mall
        assert f"积分价值×2 · {OFFER}" in mall
        confirm = client.get("/m/mall/c50").text
        assert "原价 500" in confirm and OFFER in confirm and "兑换后剩余 950 积分" in confirm
        placed = client.post("/m/mall/c50", data={"key": key_of(confirm), "csrf": csrf}, follow_redirects=False)
        order = client.get(placed.headers["location"]).text
        assert "250 积分" in order and f"{OFFER} 为您节省 250 积分" in order
        english = client.get("/m/mall?lang=en").text  # (the language is remembered from here on)
        assert "was 500" in english and f"Points worth ×2 · {OFFER}" in english
    assert available(ledger) == 950


def test_the_member_centre_mall_on_a_phone(centre, tmp_path):  # noqa: F811 - the fixture
    need_chromium()
    app, _ = centre
    launch(app)
    shots = screenshots(tmp_path)
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 812}, locale="zh-CN")
        page.goto(f"{base}/m/enter?token={token(app, 'M1')}")
        page.goto(f"{base}/m/mall")
        card = page.locator('a[data-reward="c50"]')
        assert card.locator(".price").inner_text().split()[0] == "250"
        assert card.locator("s").inner_text() == "原价 500"
        assert card.locator("s").evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
        assert card.locator(".offer").inner_text() == f"积分价值×2 · {OFFER}"
        page.screenshot(path=str(shots / "member-mall-double-value.png"), full_page=True)
        page.goto(f"{base}/m/mall/c50")
        assert "兑换后剩余 950 积分" in page.inner_text("main")
        page.screenshot(path=str(shots / "member-confirm-double-value.png"))
