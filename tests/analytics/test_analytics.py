"""Analytics: KPIs checked by hand on a small history, RFM on known members, CLV parameter recovery."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
from fastapi.testclient import TestClient

from jifen.analytics import clv, frames, kpis, rfm
from jifen.ledger import operations as ops
from jifen.members import segments
from jifen.programs.service import get_program
from tests.conftest import Ledger, api_key, m
from tests.support.intake import add_members, configure, send_one

DAY = dt.timedelta(days=1)
NOW = dt.datetime(2026, 6, 30, 4, 0, tzinfo=dt.UTC)


def history(factory):
    """In June: alice buys ¥200 (220 points) and ¥50 (50), checks in (5), spends 100; bob buys ¥80 (80).
    In May: carol buys ¥300 (330)."""
    configure(factory, {"pending_days": {}}, now=NOW - 90 * DAY)
    add_members(factory, "alice", "bob", "carol")
    send_one(factory, "carol", amount=300, order_id="C1", at=NOW - 45 * DAY, now=NOW - 45 * DAY)
    send_one(factory, "alice", amount=200, order_id="A1", at=NOW - 20 * DAY, now=NOW - 20 * DAY)
    send_one(factory, "alice", amount=50, order_id="A2", at=NOW - 5 * DAY, now=NOW - 5 * DAY)
    send_one(factory, "alice", "check_in", at=NOW - 5 * DAY, now=NOW - 5 * DAY)
    send_one(factory, "bob", amount=80, order_id="B1", at=NOW - 10 * DAY, now=NOW - 10 * DAY)
    Ledger(factory, now=NOW - 2 * DAY).run(lambda sc, s: ops.spend(sc, m(sc, "alice"), 100))


def data(factory):
    with factory() as s:
        program = get_program(s, "default")
        return program, frames.load(s, program)


def test_kpis_by_hand(factory):
    history(factory)
    program, d = data(factory)
    june = dt.datetime(2026, 5, 31, 16, tzinfo=dt.UTC)  # 1 June in Shanghai
    (row,) = kpis.kpis(d, june, NOW, program.point_value)
    assert (row["issued"], row["redeemed"], row["expired"]) == (355, 100, 0)  # 220 + 50 + 5 + 80
    assert row["consumption_rate"] == round(100 / 355, 4)
    assert (row["active_members"], row["redeemers"], row["redemption_rate"]) == (2, 1, 0.5)
    assert row["purchase_share"] == round(350 / 355, 4) and row["issued_value_yuan"] == "3.55"
    assert row["mau"] == 2  # carol's May purchase is older than 30 days
    assert kpis.repeat_purchase(d) == {"point_users": 1.0, "non_users": 0.0}  # alice bought twice, used points
    by_tier = {r["tier"]: r["issued"] for r in kpis.kpis(d, NOW - 90 * DAY, NOW, program.point_value, by="tier")}
    assert by_tier == {"normal": 685}


def test_rfm_segments_and_storage(factory):
    history(factory)
    program, d = data(factory)
    table = rfm.rfm(d, NOW).to_dicts()
    got = {r["member_id"]: (r["recency"], r["frequency"], r["segment"]) for r in table}
    assert got == {"alice": (5, 2, "中價值"), "bob": (10, 1, "中價值"), "carol": (45, 1, "低頻")}
    assert {r["member_id"]: r["r"] for r in table}["alice"] == 5  # the most recent buyer scores highest
    with factory() as s, s.begin():
        table = rfm.rfm(frames.load(s, get_program(s, "default")), NOW)
        assert segments.store(s, rfm.segment_of(table), rfm.SEGMENT_NAMES) == 3
    # Rules see the stored segment.
    configure(factory, {"pending_days": {}, "rules": {"rules": [
        {"code": "vip", "events": ["purchase"], "condition": '"中價值" in member.segments', "award": {"fixed": 7}}]}},
        now=NOW)
    assert send_one(factory, "bob", amount=1, order_id="B2", at=NOW, now=NOW)["points"] == 7
    assert send_one(factory, "carol", amount=1, order_id="C2", at=NOW, now=NOW)["points"] == 0


def test_bgnbd_and_gamma_gamma_recover_their_parameters():
    rng = np.random.default_rng(7)
    truth = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}  # CDNOW's published fit (Fader, Hardie & Lee 2005)
    s = clv.simulate_bgnbd(*truth.values(), customers=5000, T=39.0, rng=rng)
    fitted = clv.fit_bgnbd(s)
    for k, v in truth.items():
        assert abs(fitted[k] - v) / v < 0.15, (k, fitted[k], v)
    assert (clv.p_alive(fitted, s)[s.x == 0] == 1).all()
    assert clv.expected_purchases(fitted, s, 39).mean() > 0
    p, q, v = 6.25, 3.74, 15.44  # Fader, Hardie & Lee's Gamma-Gamma fit for CDNOW
    x = rng.integers(1, 10, 10_000).astype(float)
    nu = rng.gamma(q, 1 / v, x.size)
    spend = rng.gamma(p * x, 1 / (nu * x))
    g = clv.fit_gamma_gamma(clv.Summary(x=x, t_x=x, T=x, m=spend))
    for k, want in (("p", p), ("q", q), ("gamma", v)):
        assert abs(g[k] - want) / want < 0.2, (k, g[k], want)


def test_analytics_api_and_permissions(app, factory):
    history(factory)
    with TestClient(app) as client:
        finance = {"Authorization": f"Bearer {api_key(app, 'finance')}"}
        r = client.get("/v1/analytics/kpis", params={"from": "2026-06-01T00:00:00+08:00", "to": NOW.isoformat()},
                       headers=finance)
        assert r.status_code == 200 and r.json()["rows"][0]["issued"] == 355
        assert r.json()["rows"][0]["active_rate"] == round(2 / 3, 4) and r.json()["now"][0]["wallet"] == "points"
        assert client.get("/v1/analytics/rfm", headers=finance).json()["segments"]
        pos = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        assert client.get("/v1/analytics/rfm", headers=pos).status_code == 403
        bad = client.get("/v1/analytics/kpis", params={"from": NOW.isoformat(), "to": "2026-06-01T00:00:00+08:00"},
                         headers=finance)
        assert bad.status_code == 422


def test_parquet_round_trip(factory, tmp_path):
    history(factory)
    _, d = data(factory)
    counts = frames.export(d, tmp_path / "pq")
    back = frames.read(tmp_path / "pq")
    assert counts == {k: v.height for k, v in back.items()} and back["entries"].equals(d["entries"])
    assert set(back) == {"members", "events", "entries", "redemptions", "awards"}
    assert "phone" not in back["members"].columns  # no personal data leaves the database
    assert Decimal(str(back["events"]["amount"].sum())) == Decimal("630")


def test_economy_and_lifecycle_by_hand(factory):
    from jifen.analytics import economy

    history(factory)
    _, d = data(factory)
    months = {r["month"]: r for r in economy.monthly(d, "Asia/Shanghai")}
    assert (months["2026-06"]["issued"], months["2026-06"]["redeemed"]) == (355, 100)
    assert months["2026-05"]["issued"] == 330 and months["2026-06"]["warning"] is not None  # 28 % < 30 %
    stages = {r["member_id"]: (r["stage"], r["days_idle"]) for r in economy.lifecycle(d, NOW).to_dicts()}
    assert stages == {"alice": ("active", 5), "bob": ("active", 10), "carol": ("dormant", 45)}
    assert economy.cost_per_point(d) is None and economy.top_rewards(d) == []  # no mall orders in this history


def test_campaigns_funnel_and_channels(factory):
    configure(factory, {"pending_days": {}, "rules": {"rules": [
        {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
        {"code": "double11", "layer": "campaign", "events": ["purchase"], "award": {"multiplier": 2}}]}},
        now=NOW - 90 * DAY)
    add_members(factory, "alice", "bob")
    send_one(factory, "alice", amount=200, order_id="A1", at=NOW - 3 * DAY, now=NOW, channel="app")
    send_one(factory, "bob", amount=100, order_id="B1", at=NOW - 2 * DAY, now=NOW, channel="pos")
    program, d = data(factory)
    (c,) = kpis.campaigns(d, NOW - 30 * DAY, NOW, program.point_value)
    # 300 campaign points cost ¥3 and came with ¥300 of orders: (300 − 3) ÷ 3 = 99.
    assert c == {"rule": "double11", "points": 300, "members": 2, "spend": 300.0, "cost_yuan": 3.0, "gross_roi": 99.0}
    channels = {r["channel"]: r["issued"] for r in kpis.kpis(d, NOW - 30 * DAY, NOW, program.point_value, by="channel")}
    assert channels == {"app": 400, "pos": 200}
    assert kpis.funnel(d, NOW - 30 * DAY, NOW) == {"earned": 2, "ordered": 0, "fulfilled": 0, "order_rate": 0.0,
                                                   "fulfil_rate": None}


def test_the_same_kpis_in_sql_over_the_parquet_export(factory, tmp_path):
    from jifen.analytics.sql import kpis_sql

    history(factory)
    program, d = data(factory)
    frames.export(d, tmp_path)
    june = dt.datetime(2026, 5, 31, 16, tzinfo=dt.UTC)
    (polars_row,) = kpis.kpis(d, june, NOW, program.point_value)
    sql_row = kpis_sql(tmp_path, june, NOW)
    assert sql_row == {k: polars_row[k] for k in ("issued", "redeemed", "expired", "redeemers")}
