"""The console dashboard: its Plotly figures carry the programme's figures for a small known programme
(on SQLite and PostgreSQL), the filters change them, bad filters get a clear 422, the CSV export says what
the charts show, and plotly.min.js comes from the installed plotly package."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from importlib.resources import files
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from jifen.db import utcnow
from tests.conftest import api_key, keyed
from tests.support.browser import chromium, need_chromium, serving
from tests.support.console_login import PASSWORD, add_user, sign_in
from tests.support.intake import add_members, configure, event, send

FIGURES = re.compile(r'<script id="dashboard-figures" type="application/json">(.*?)</script>', re.S)


@pytest.fixture
def programme(app, factory):
    """alice buys ¥1,200 in the app 3 days ago (1,200 + 120 bonus) and redeems a 500-point kettle now; carol
    checks in in the app yesterday (5); bob buys ¥200 in a store 40 days ago (200 + 20)."""
    now = utcnow()
    configure(factory, {"pending_days": {}}, now=now - dt.timedelta(days=60))
    add_members(factory, "alice", "bob", "carol")
    send(factory, event("bob", amount="200", channel="store", at=now - dt.timedelta(days=40)), now=now)
    send(factory, event("alice", amount="1200", channel="app", at=now - dt.timedelta(days=3)), now=now)
    send(factory, event("carol", "check_in", channel="app", at=now - dt.timedelta(days=1)), now=now)
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert client.post("/v1/rewards", json={"code": "kettle", "name": "電熱水壺", "kind": "physical",
                                                "category": "實物", "points": 500, "stock": 5},
                           headers=admin).status_code == 201
        order = client.post("/v1/redemptions", json={"member_id": "alice", "reward": "kettle", "address": {
            "name": "王小明", "phone": "13800001111", "line": "上海市浦東新區世紀大道100號"}}, headers=admin)
        assert order.status_code == 201, order.text
        assert client.post(f"/v1/redemptions/{order.json()['id']}/fulfil", headers=admin).status_code == 200
        sign_in(client, add_user(app, "operator", "xiaowang"))
        yield client, now


def figures(client, query: str = "") -> dict:
    page = client.get(f"/console{query}")
    assert page.status_code == 200, page.text
    return json.loads(FIGURES.search(page.text).group(1))


def by_name(figs: dict, chart: str) -> dict:
    """{series name: {category: value}} of one chart (vertical or horizontal bars, funnel)."""
    out = {}
    for trace in figs[chart]["data"]:
        across = trace["type"] == "funnel" or trace.get("orientation") == "h"
        categories, values = (trace["y"], trace["x"]) if across else (trace["x"], trace["y"])
        out[trace["name"]] = dict(zip(categories, values, strict=True))
    return out


def nonzero(series: dict) -> dict:
    return {k: v for k, v in series.items() if v}


def day(now: dt.datetime, days_ago: int) -> str:
    return (now - dt.timedelta(days=days_ago)).astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()


def test_figures_carry_the_programme_s_data(programme):
    client, now = programme
    figs = figures(client)  # the last 30 days: alice and carol, not bob
    daily = by_name(figs, "daily")
    assert len(daily["发放"]) == 31 and list(daily["发放"])[-1] == day(now, 0)
    assert nonzero(daily["发放"]) == {day(now, 3): 1320, day(now, 1): 5}
    assert nonzero(daily["兑换"]) == {day(now, 0): 500}
    assert by_name(figs, "source")["积分"] == {"获得": 1325, "兑换扣除": 500}  # (the hold is not counted twice)
    assert by_name(figs, "layers")["积分"] == {"基础规则": 1325}
    assert by_name(figs, "tiers")["会员数"] == {"普通": 2, "銀卡": 1}  # alice's ¥1,200 made her silver (by name)
    assert by_name(figs, "rewards")["件数"] == {"電熱水壺": 1}
    assert by_name(figs, "funnel")["会员数"] == {"获得积分": 2, "下单兑换": 1, "兑换完成": 1}
    # 500 / 1,325 redeemed; 2 of 3 members active; 1 of the 2 active redeemed
    assert by_name(figs, "rates")["比率 (%)"] == {"积分消耗率": 37.74, "活跃率": 66.67, "兑换率": 50.0}
    bands = [(s["x0"], s["x1"]) for s in figs["rates"]["layout"]["shapes"]]
    assert bands == [(30.0, 40.0), (35.0, 100), (8.0, 100)]  # seed 001's 30–40 %, seed 003's 35 % and 8 % targets
    assert figs["daily"]["layout"]["xaxis"]["title"]["text"] == "日期"
    assert figs["daily"]["layout"]["xaxis"]["tickformat"] == "%-m月%-d日"  # not Plotly's English "Nov 8"
    assert figs["daily"]["layout"]["yaxis"]["title"]["text"] == "积分"
    page = client.get("/console").text
    assert "37.7%" in page and "1,325" in page  # the KPI cards


def test_filters_change_the_data(programme):
    client, now = programme
    quarter = figures(client, "?days=90")
    assert nonzero(by_name(quarter, "daily")["发放"]) == {day(now, 40): 220, day(now, 3): 1320, day(now, 1): 5}
    silver = figures(client, "?tier=silver")
    assert nonzero(by_name(silver, "daily")["发放"]) == {day(now, 3): 1320}
    assert by_name(silver, "tiers")["会员数"] == {"銀卡": 1}
    assert by_name(silver, "funnel")["会员数"] == {"获得积分": 1, "下单兑换": 1, "兑换完成": 1}
    store = figures(client, "?days=90&channel=store")
    assert by_name(store, "source")["积分"] == {"获得": 220}
    assert by_name(store, "funnel")["会员数"] == {"获得积分": 1, "下单兑换": 0, "兑换完成": 0}
    assert by_name(store, "rewards")["件数"] == {}
    english = figures(client, "?lang=en&days=7")
    assert len(by_name(english, "daily")["Earned"]) == 8
    assert english["funnel"]["data"][0]["y"] == ["Earned points", "Placed an order", "Order fulfilled"]


@pytest.mark.parametrize("query, message", [
    ("?days=abc", "days must be a whole number"), ("?days=12", "days must be one of 7, 30, 90, 365"),
    ("?tier=platinum", "unknown tier &#39;platinum&#39;: one of normal, silver"),
    ("?channel=fax", "unknown channel &#39;fax&#39;: one of app, store")])
def test_a_bad_filter_is_a_clear_422(programme, query, message):
    client, _ = programme
    page = client.get(f"/console{query}")
    assert page.status_code == 422 and message in page.text and "dashboard-figures" not in page.text
    assert "流通积分" in page.text  # the rest of the page is still there
    export = client.get(f"/console/dashboard.csv{query}")
    assert export.status_code == 422 and message.replace("&#39;", "'") in export.text


def test_csv_export_has_the_dashboard_s_figures(programme):
    client, now = programme
    r = client.get("/console/dashboard.csv?days=90&lang=en")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="dashboard-{now:%Y%m%d}-90d.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["figure", "series", "category", "value"]
    kpi = {c: v for f, _, c, v in rows if f == "kpi"}
    assert (kpi["issued"], kpi["redeemed"], kpi["active_members"], kpi["consumption_rate"]) == \
        ("1545", "500", "3", "0.3236")
    issued = {c: int(v) for f, s, c, v in rows if f == "daily" and s == "Earned" and v != "0"}
    assert issued == {day(now, 40): 220, day(now, 3): 1320, day(now, 1): 5}
    assert ["funnel", "Members", "Earned points", "3"] in rows and ["tiers", "Members", "銀卡", "1"] in rows
    assert ["rewards", "Units", "電熱水壺", "1"] in rows


def test_the_tier_filter_offers_tier_names(programme):
    client, _ = programme
    page = client.get("/console?tier=silver").text
    assert '<option value="silver" selected>銀卡</option>' in page and '<option value="normal">普通</option>' in page


@pytest.mark.parametrize("role", ["customer_service", "pos"])
def test_the_dashboard_is_for_roles_with_the_analytics_permission(programme, app, role):
    client, _ = programme
    with TestClient(app) as other:
        assert sign_in(other, add_user(app, role, f"no-reports-{role}")).status_code == 303
        page = other.get("/console")
        assert page.status_code == 200 and "流通积分" in page.text  # the wallets are everyone's
        assert "dashboard-figures" not in page.text and "数据看板仅对有数据分析权限的角色开放" in page.text
        assert 'href="/console/analytics"' not in page.text
        assert other.get("/console/dashboard.csv").status_code == 403
        assert other.get("/console/analytics/rfm").status_code == 403
    assert "dashboard-figures" in client.get("/console").text  # an operator has it


def test_plotly_js_is_served_from_the_installed_package(sqlite_app):
    with TestClient(sqlite_app) as client:
        r = client.get("/console/vendor/plotly.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == (files("plotly") / "package_data" / "plotly.min.js").read_bytes()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # (the figures on PostgreSQL: the tests above)
def test_dashboard_renders_in_chromium(programme, app, tmp_path):
    need_chromium()
    _, now = programme
    with serving(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        hosts = set()
        page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
        page.goto(f"{base}/console")
        page.fill("input[name=username]", "xiaowang")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login button")
        page.wait_for_url("**/console")
        for lang in ("zh", "en"):
            page.goto(f"{base}/console?lang={lang}")
            page.wait_for_function("document.querySelector('#chart-rates').data")
            page.screenshot(path=tmp_path / f"dashboard-{lang}.png", full_page=True)
        daily = page.evaluate("document.querySelector('#chart-daily').data.map(t => [t.name, t.x, t.y])")
        issued = {x: y for x, y in zip(daily[0][1], daily[0][2], strict=True) if y}
        assert daily[0][0] == "Earned" and issued == {day(now, 3): 1320, day(now, 1): 5}
        assert page.evaluate("document.querySelector('#chart-funnel').data[0].x") == [2, 1, 1]
        assert page.evaluate("document.querySelector('#chart-rates').data[0].x") == [37.74, 66.67, 50.0]
        # Plotly drew the axes and their titles (SVG), not just kept the data
        assert page.locator("#chart-daily .xtitle").text_content() == "Day"
        assert page.locator("#chart-daily .ytitle").text_content() == "Points"
        assert page.locator("#chart-funnel .funnellayer .point").count() == 3  # three steps drawn
        page.select_option("select[name=tier]", "silver")
        page.click(".filters button")
        page.wait_for_url("**tier=silver**")
        page.wait_for_function("document.querySelector('#chart-funnel').data")
        assert page.evaluate("document.querySelector('#chart-funnel').data[0].x") == [1, 1, 1]
    assert hosts == {base.split("/")[2]}  # plotly.min.js and all else from the console itself: no CDN
