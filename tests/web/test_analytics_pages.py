"""The console's analytics pages show what the analytics functions compute: on a small programme (36
buyers in three monthly cohorts), every table of the RFM, CLV, cohort and economy pages — read back through
its CSV export, and as formatted on the page — equals the function's result on the whole programme's data
(the pages read only what they need: the figures must not change for it); bad filters are a clear 422, and
the pages are for roles with the analytics permission."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient

from jifen.analytics import clv, economy, frames, kpis, rfm
from jifen.analytics.overview import wallet_figures
from jifen.db import utcnow
from jifen.programs.service import get_program
from tests.support.browser import chromium_page, need_chromium, screenshots, serving, sign_in_page
from tests.support.console_login import PASSWORD, add_user, sign_in
from tests.support.intake import add_members, configure, event, send

FIGURES = re.compile(r'<script id="analytics-figures" type="application/json">(.*?)</script>', re.S)
COHORT_DAYS = (75, 40, 6)  # three cohorts, joined about this many days ago
BUYERS = 36


def histories(n: int = BUYERS, seed: int = 1) -> dict[int, list[int]]:
    """Days ago each buyer bought, drawn as BG/NBD assumes (a Poisson rate, a chance to drop out after each
    purchase) from a fixed seed: a history the models fit to sane parameters (small made-up patterns make
    Nelder-Mead run a or q off to 10⁸, where the expectations overflow)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        joined = COHORT_DAYS[i % 3]
        rate, dropout = rng.gamma(2.0, 1 / 10), rng.beta(2, 5)  # purchases a day; chance to leave after one
        days, t = [joined - 1], joined - 1.0
        while rng.random() >= dropout:
            t -= rng.exponential(1 / rate)
            if t < 0:
                break
            days.append(int(t))
        out[i] = sorted(set(days), reverse=True)
    return out


@pytest.fixture
def programme(app, factory):
    now = utcnow()
    configure(factory, {"pending_days": {}}, now=now - dt.timedelta(days=120))
    for i in range(BUYERS):
        add_members(factory, f"m{i:02d}", joined_at=now - dt.timedelta(days=COHORT_DAYS[i % 3]))
    add_members(factory, "idle", joined_at=now - dt.timedelta(days=40))  # joined, never active
    send(factory, *[event(f"m{i:02d}", amount=str(80 + 23 * i + 31 * k * (i % 4)), channel="app",
                          at=now - dt.timedelta(days=d, hours=1))
                    for i, days in histories().items() for k, d in enumerate(days)], now=now)
    with TestClient(app) as client:
        assert sign_in(client, add_user(app, "operator", "xiaowang")).status_code == 303
        yield client, now


def whole(factory) -> tuple:
    """The programme and all of its analytics tables (what the CLI and API load)."""
    s = factory()
    program = get_program(s, "default")
    return s, program, frames.load(s, program)


def csv_of(client, url: str) -> list[dict]:
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), (url, r.text)
    return list(csv.DictReader(io.StringIO(r.text)))


def figures(client, url: str) -> dict:
    page = client.get(url)
    assert page.status_code == 200, page.text
    return json.loads(FIGURES.search(page.text).group(1))


def cells(html: str, table: str, key: str) -> list[str]:
    """The shown values of one column of one table on a page."""
    section = html.split(f'id="table-{table}"', 1)[1].split("</section>", 1)[0]
    return re.findall(rf'<td data-key="{key}"[^>]*>(.*?)</td>', section)


def test_rfm_page_equals_the_rfm_function(programme, factory):
    client, now = programme
    rows = csv_of(client, "/console/analytics/rfm/segments.csv")
    s, program, data = whole(factory)
    with s:
        table = rfm.rfm(data, utcnow())
        expected = rfm.segment_summary(table, rfm.points_held(s, program))
        available = sum(wallet_figures(s, program, w)["members"]["available"] for w in program.wallets)
    assert [r["segment"] for r in rows] == list(rfm.ORDER)
    assert [(int(r["members"]), int(r["points"]), float(r["spend"])) for r in rows] == \
        [(e["members"], e["points"], e["spend"]) for e in expected]
    assert sum(int(r["members"]) for r in rows) == BUYERS  # every buyer in one segment; "idle" never bought
    assert sum(int(r["points"]) for r in rows) == available > 0  # (only buyers hold points here)
    page = client.get("/console/analytics/rfm")
    assert cells(page.text, "segments", "members") == [f"{e['members']:,}" for e in expected]
    assert cells(page.text, "segments", "spend") == [f"¥{e['spend']:,.2f}" for e in expected]
    figs = figures(client, "/console/analytics/rfm?lang=en")
    assert figs["segments"]["data"][0]["x"] == ["Dormant", "Churn warning", "High value", "Medium value",
                                                "Low frequency", "Regular"]
    assert figs["segments"]["data"][0]["y"] == [e["members"] for e in expected]


def test_clv_page_equals_the_models_fitted_as_the_cli_fits_them(programme, factory):
    client, now = programme
    rows = csv_of(client, "/console/analytics/clv/members.csv?weeks=26")
    s, program, data = whole(factory)
    with s:
        ids, day, amount = clv.purchases(data, program.timezone)
    from jifen.analytics.clv_report import today_number

    end = today_number(utcnow(), program.timezone)
    order_ids, summary = clv.summarise(ids, day, amount, end, 7.0)
    p, g = clv.fit_bgnbd(summary), clv.fit_gamma_gamma(summary)
    expected = sorted(clv.member_values(p, g, order_ids, summary, 26), key=lambda r: (-r["clv"], r["member_id"]))
    assert len(rows) == 20 and not any(math.isnan(e["clv"]) for e in expected)  # (a q > 1 fit: all valued)
    assert [(r["member_id"], float(r["clv"]), float(r["p_alive"])) for r in rows] == \
        [(e["member_id"], e["clv"], e["p_alive"]) for e in expected[:20]]  # the top 20
    page = client.get("/console/analytics/clv?weeks=26").text
    assert f"{p['r']:.4g}" in page and f"{g['q']:.4g}" in page  # the fitted parameters shown
    assert "chart-holdout" not in page and "check=1" in page  # the second fit only on request
    checked = csv_of(client, "/console/analytics/clv/holdout.csv?weeks=26&check=1")
    cal_ids, cal = clv.summarise(ids, day, amount, end - 28, 7.0)
    fitted = clv.fit_bgnbd(cal)
    groups = clv.conditional_expectations(fitted, cal, clv.holdout_counts(cal_ids, ids, day, end - 28, end), 4.0)
    assert [(r["repeat_purchases"], int(r["customers"]), float(r["actual"]), float(r["predicted"]))
            for r in checked] == [(x["repeat_purchases"], x["customers"], x["actual"], x["predicted"]) for x in groups]
    holdout = figures(client, "/console/analytics/clv?weeks=26&check=1")["holdout"]["data"]
    assert holdout[0]["y"] == [x["actual"] for x in groups] and holdout[1]["y"] == [x["predicted"] for x in groups]


def test_cohort_page_equals_the_cohorts_function(programme, factory):
    client, _ = programme
    rows = csv_of(client, "/console/analytics/cohorts/cohorts.csv?months=6")
    s, program, data = whole(factory)
    with s:
        triangle = economy.cohort_triangle(economy.cohorts(data, program.timezone))
    assert [r["cohort"] for r in rows] == triangle["cohorts"] and len(rows) >= 3
    assert [int(r["members"]) for r in rows] == triangle["sizes"]
    assert sum(triangle["sizes"]) == BUYERS + 1  # the buyers and "idle"
    for row, expected in zip(rows, triangle["retention"], strict=True):
        assert [None if row[f"m{k}"] == "" else float(row[f"m{k}"]) for k in range(len(expected))] == expected
    heat = figures(client, "/console/analytics/cohorts?months=6")["cohorts"]["data"][0]
    assert heat["type"] == "heatmap" and len(heat["y"]) == len(rows)
    assert heat["z"] == [[None if v is None else round(v * 100, 2) for v in r] for r in triangle["retention"]]


def test_economy_page_equals_the_kpis_month_by_month(programme, factory):
    client, now = programme
    rows = csv_of(client, "/console/analytics/economy/months.csv?months=6")
    assert len(rows) == 6
    s, program, data = whole(factory)
    with s:
        monthly = {r["month"]: r for r in economy.monthly(data, program.timezone)}
        outstanding = sum(wallet_figures(s, program, w)["outstanding"] for w in program.wallets)
        liability = sum(wallet_figures(s, program, w)["liability"] for w in program.wallets)
    for row in rows:
        if row["month"] in monthly:
            m = monthly[row["month"]]
            assert (int(row["issued"]), int(row["redeemed"]), int(row["expired"])) == \
                (m["issued"], m["redeemed"], m["expired"])
        else:
            assert (row["issued"], row["redeemed"]) == ("0", "0")
    assert sum(int(r["issued"]) for r in rows) == sum(m["issued"] for m in monthly.values()) > 0
    assert int(rows[-1]["outstanding"]) == outstanding  # the liability now is the wallets' now
    assert rows[-1]["liability"] == str(liability)
    last_start = dt.datetime.fromisoformat(rows[-1]["month"] + "-01T00:00:00+08:00")
    row = kpis.kpis(data, last_start, utcnow(), program.point_value)[0]
    assert float(rows[-1]["active_rate"]) == row["active_rate"]
    figs = figures(client, "/console/analytics/economy?months=6")
    assert figs["economy"]["data"][0]["y"] == [int(r["issued"]) for r in rows]
    assert [s["y0"] for s in figs["rates"]["layout"]["shapes"]] == [30.0, 35.0]  # seed 001's 30 %, seed 003's 35 %


@pytest.mark.parametrize("url, message", [
    ("/console/analytics/economy?months=5", "months must be one of 6, 12, 24"),
    ("/console/analytics/cohorts?months=x", "months must be one of 6, 12, 24"),
    ("/console/analytics/clv?weeks=0", "weeks must be one of 13, 26, 52")])
def test_a_bad_filter_is_a_clear_422(programme, url, message):
    client, _ = programme
    page = client.get(url)
    assert page.status_code == 422 and message in page.text and "analytics-figures" not in page.text
    path, query = url.split("?")
    table = {"economy": "months", "cohorts": "cohorts", "clv": "members"}[path.rsplit("/", 1)[1]]
    export = client.get(f"{path}/{table}.csv?{query}")
    assert export.status_code == 422 and message in export.text


def test_unknown_pages_and_tables_are_404(programme):
    client, _ = programme
    missing = client.get("/console/analytics/ltv")
    assert missing.status_code == 404 and "no analytics page &#39;ltv&#39;: one of rfm, clv, cohorts, economy" in missing.text
    assert client.get("/console/analytics/rfm/nope.csv").status_code == 404
    assert client.get("/console/analytics", follow_redirects=False).headers["location"] == "/console/analytics/rfm"


@pytest.mark.parametrize("role", ["customer_service", "pos"])
def test_analytics_pages_are_for_roles_with_the_permission(programme, app, role):
    with TestClient(app) as other:
        assert sign_in(other, add_user(app, role, f"x-{role}")).status_code == 303
        for url in ("/console/analytics/rfm", "/console/analytics/economy", "/console/analytics/rfm/segments.csv"):
            assert other.get(url).status_code == 403, url


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_economy_chart_draws_the_page_s_figures_in_chromium(programme, app, tmp_path):
    need_chromium()
    client, _ = programme
    rows = csv_of(client, "/console/analytics/economy/months.csv?months=6")
    out = screenshots(tmp_path)
    with serving(app) as base, chromium_page(1280, 1000) as page:
        sign_in_page(page, base, "xiaowang", PASSWORD)
        page.goto(f"{base}/console/analytics/economy?months=6&lang=en")
        page.wait_for_function("document.querySelector('#chart-rates').data")
        issued = page.evaluate("document.querySelector('#chart-economy').data[0]")
        assert issued["name"] == "Earned" and issued["y"] == [int(r["issued"]) for r in rows]
        liability = page.evaluate("document.querySelector('#chart-economy').data[3].y")
        assert liability == [float(r["liability"]) for r in rows]
        assert page.locator("#chart-economy .xtitle").text_content() == "Month"  # Plotly drew the axes
        page.screenshot(path=out / "console-analytics-economy.png", full_page=True)
        page.goto(f"{base}/console/analytics/cohorts?months=6&lang=en")
        page.wait_for_function("document.querySelector('#chart-cohorts').data")
        assert page.locator("#chart-cohorts .hm").count() == 1  # the heatmap drawn
        page.screenshot(path=out / "console-analytics-cohorts.png", full_page=True)
        page.goto(f"{base}/console/analytics/rfm")
        page.wait_for_function("document.querySelector('#chart-value').data")
        page.screenshot(path=out / "console-analytics-rfm.png", full_page=True)
