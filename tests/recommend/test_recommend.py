"""Recommendations: cold start from popularity within the tier, never a honeypot, what expiring points can buy
(from the member's actual lots), the API, and the time-split evaluation beating popularity."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from fastapi.testclient import TestClient

from jifen.db import utcnow
from jifen.flows.redeem import redeem
from jifen.ledger import operations as ops
from jifen.mall import service as mall
from jifen.members.service import get_member
from jifen.programs.service import get_program
from jifen.recommend import evaluate, history, service
from tests.conftest import Ledger, api_key, keyed, m
from tests.support.intake import add_members, configure, event, send

NOW = utcnow().replace(microsecond=0)
REWARDS = (
    {"code": "tea", "name": "茶飲券", "kind": "coupon", "category": "優惠券", "points": 300,
     "coupon": {"threshold": 30, "discount": 3, "valid_days": 30}},
    {"code": "tree", "name": "植樹一棵", "kind": "charity", "category": "公益", "points": 1000},
    {"code": "mug", "name": "品牌保溫杯", "kind": "physical", "category": "實物/家居", "points": 3000, "value": "39"},
    {"code": "trap", "name": "限時秒殺", "kind": "coupon", "category": "優惠券", "points": 10, "honeypot": True,
     "coupon": {"threshold": 1, "discount": 1, "valid_days": 1}},
)


@pytest.fixture
def shop(app, factory):
    configure(factory, {"pending_days": {}}, now=NOW - dt.timedelta(days=60))
    add_members(factory, "fan1", "fan2", "fan3", "fan4", "newbie", "saver")
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        for body in REWARDS:
            assert client.post("/v1/rewards", json=body, headers=admin).status_code == 201
        earlier = Ledger(factory, now=NOW - dt.timedelta(days=20))
        for fan in ("fan1", "fan2", "fan3", "fan4"):
            earlier.run(lambda sc, s, fan=fan: ops.award(sc, m(sc, fan), 1000))
            earlier.run(lambda sc, s, fan=fan: redeem(sc, m(sc, fan), mall.get_reward(s, sc.program, "tea"), 1))
        earlier.run(lambda sc, s: ops.award(sc, m(sc, "newbie"), 5000))
        # saver: 1,520 points expiring in ten days, 2,000 more that keep.
        earlier.run(lambda sc, s: ops.award(sc, m(sc, "saver"), 1520, expires_at=NOW + dt.timedelta(days=10)))
        earlier.run(lambda sc, s: ops.award(sc, m(sc, "saver"), 2000, expires_at=NOW + dt.timedelta(days=400)))
        send(factory, event("saver", "browse", at=NOW - dt.timedelta(days=3), attributes={"reward": "mug"}))
        yield client, admin


def picks(factory, member_id: str, k: int = 5) -> list[dict]:
    with factory() as s:
        program = get_program(s, "default")
        return service.recommend(s, program, get_member(s, program, member_id), NOW, k)


def test_history_reads_redemptions_browsing_and_past_balances(shop, factory):
    with factory() as s:
        h = history.load(s, get_program(s, "default"))
    assert "trap" not in h.codes  # a honeypot is never a candidate
    assert h.redeemed.sum() == 4 and list(h.weight[~h.redeemed]) == [history.BROWSE_WEIGHT]
    assert h.codes[h.what[~h.redeemed][0]] == "mug"
    saver = int(np.searchsorted(h.member_pks, get_member_pk(factory, "saver")))
    fan = int(np.searchsorted(h.member_pks, get_member_pk(factory, "fan1")))
    assert h.balances_at(history.stamp(NOW))[[saver, fan]].tolist() == [3520, 700]
    assert h.balances_at(history.stamp(NOW - dt.timedelta(days=30)))[[saver, fan]].tolist() == [0, 0]


def get_member_pk(factory, member_id: str) -> int:
    with factory() as s:
        return get_member(s, get_program(s, "default"), member_id).id


def test_cold_start_is_popularity_within_the_tier(shop, factory):
    got = picks(factory, "newbie")
    assert [p["reward"] for p in got][0] == "tea"  # what members of its tier redeem
    assert {p["reward"] for p in got} == {"tea", "tree", "mug"}  # never the honeypot
    assert all(p["affordable"] for p in got)  # 5,000 points pay for each
    assert [p["reward"] for p in picks(factory, "newbie", k=2)] == [p["reward"] for p in got[:2]]


def test_expiring_points_name_a_reward_the_balance_buys(shop, factory):
    with factory() as s:
        program = get_program(s, "default")
        offer = service.expiring_offer(s, program, get_member(s, program, "saver"), NOW, days=30)
        assert offer is not None and offer["points"] == 1520
        # The reward uses the expiring points up and the balance (3,520) pays for it: the mug (3,000).
        assert offer["reward"]["reward"] == "mug"
        last_day = (NOW + dt.timedelta(days=10) - dt.timedelta(microseconds=1)).astimezone(
            dt.timezone(dt.timedelta(hours=8))).date()
        assert offer["date"] == last_day.isoformat()
        assert offer["message"] == f"您有1520分将于{last_day.isoformat()}过期,可兑换价值39.00元的品牌保溫杯。"
        assert service.expiring_offer(s, program, get_member(s, program, "saver"), NOW, days=5) is None
        assert service.expiring_offer(s, program, get_member(s, program, "newbie"), NOW) is None


def test_recommendations_api(shop):
    client, admin = shop
    r = client.get("/v1/members/saver/recommendations", params={"k": 2}, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["member_id"] == "saver" and len(body["rewards"]) == 2
    assert body["expiring"]["points"] == 1520 and body["expiring"]["reward"]["reward"] == "mug"
    missing = client.get("/v1/members/nobody/recommendations", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_member"
    assert client.get("/v1/members/saver/recommendations", params={"k": 0}, headers=admin).status_code == 422


def synthetic(members: int = 400, seed: int = 5) -> history.History:
    """Members redeem the dearest reward their balance pays for, now and then; balances grow with time."""
    rng = np.random.default_rng(seed)
    prices = np.array([100.0, 300.0, 500.0, 1000.0, 2000.0])
    start = np.datetime64("2026-01-01T00:00:00", "us")
    rate = rng.gamma(2.0, 15.0, members)  # points earned per day
    who, what, when, pm, pw, pa = [], [], [], [], [], []
    for u in range(members):
        balance = 0.0
        for d in range(90):
            balance += rate[u]
            pm.append(u), pw.append(start + np.timedelta64(d, "D")), pa.append(rate[u])
            if rng.random() < 0.04 and balance >= prices[0]:
                item = int(np.flatnonzero(prices <= balance).max())
                at = start + np.timedelta64(d, "D") + np.timedelta64(12, "h")
                who.append(u), what.append(item), when.append(at)
                balance -= prices[item]
                pm.append(u), pw.append(at), pa.append(-prices[item])
    n = len(who)
    return history.History(
        member_pks=np.arange(1, members + 1), tiers=np.array([""] * members, dtype=object),
        reward_ids=np.arange(1, 6), codes=list("abcde"), names=list("abcde"), prices=prices, values=["1"] * 5,
        categories=np.array(["x"] * 5, dtype=object), who=np.array(who), what=np.array(what),
        when=np.array(when, dtype="datetime64[us]"), weight=np.ones(n), redeemed=np.ones(n, dtype=bool),
        posting_member=np.array(pm), posting_when=np.array(pw, dtype="datetime64[us]"), posting_amount=np.array(pa))


def test_evaluation_by_time_beats_popularity_when_balances_decide():
    h = synthetic()
    end = np.datetime64("2026-04-01T00:00:00", "us")
    report = evaluate.evaluate(h, end - np.timedelta64(30, "D"), end, k=1)
    held = h.redeemed & (h.when >= end - np.timedelta64(30, "D"))
    assert report["redemptions"] == int(held.sum()) and report["members"] == np.unique(h.who[held]).size
    assert report["trained"]
    methods = report["methods"]
    assert methods["model"]["precision_at_k"] > methods["popularity"]["precision_at_k"] + 0.1
    assert methods["model"]["hit_rate"] == methods["model"]["precision_at_k"]  # k = 1: one pick, hit or not


def test_metrics_by_hand():
    truth = np.array([[True, False, False], [False, False, True]])
    got = evaluate._metrics(np.array([[0, 1], [0, 1]]), truth, 2)
    assert got == {"precision_at_k": 0.25, "hit_rate": 0.5}
