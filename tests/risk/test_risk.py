"""Velocity rules on scripted abuse: a point farm flagged, a burst of redemptions sent to review; normal
members untouched."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.db import utcnow
from jifen.ledger import operations as ops
from jifen.outbox import OutboxMessage
from tests.conftest import Ledger, api_key, keyed, m
from tests.support.intake import SEED_001, add_members, configure, send_one

FARM_RULES = {"rules": SEED_001["rules"] | {"rules": SEED_001["rules"]["rules"] + [
    {"code": "share", "events": ["share"], "award": {"fixed": 30}}]}}


def alerts(factory) -> list[dict]:
    with factory() as s:
        return [x.payload for x in s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "risk.alert")
                                             .order_by(OutboxMessage.id))]


def test_a_point_farm_is_flagged_and_normal_members_are_not(factory):
    configure(factory, {"pending_days": {}} | FARM_RULES, now=utcnow() - dt.timedelta(days=1))
    farm = [f"bot{i}" for i in range(20)]
    add_members(factory, "shopper", *farm)
    now = utcnow()
    send_one(factory, "shopper", amount=500, order_id="S1", at=now - dt.timedelta(seconds=30), now=now)
    send_one(factory, "shopper", "check_in", at=now - dt.timedelta(seconds=20), now=now)
    assert alerts(factory) == []  # a ¥500 purchase (550 points) and a check-in: nothing to see
    for bot in farm:  # twenty accounts sharing five times in a minute: 150 points each
        for i in range(5):
            send_one(factory, bot, "share", at=now - dt.timedelta(seconds=50 - i), now=now)
    flagged = {a["member_id"] for a in alerts(factory)}
    assert flagged == set(farm)
    assert all(a["rule"] == "earn_per_minute" and a["action"] == "flag" for a in alerts(factory))


def test_a_burst_of_redemptions_waits_in_review(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "alice")
    Ledger(factory, now=utcnow()).run(lambda sc, s: ops.award(sc, m(sc, "alice"), 5000))
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        client.post("/v1/rewards", json={"code": "c5", "name": "5元券", "kind": "coupon", "points": 100,
                                         "coupon": {"threshold": 50, "discount": 5}}, headers=admin)

        def redeem(i):
            return client.post("/v1/redemptions", json={"member_id": "alice", "reward": "c5"},
                               headers=admin | {"Idempotency-Key": f"r{i}"}).json()

        statuses = [redeem(i)["status"] for i in range(7)]
        assert statuses == ["fulfilled"] * 5 + ["review", "review"]  # five an hour, then a person decides
        held = client.get("/v1/members/alice/balance", headers=admin).json()["held"]
        assert held == 200
        review = [r for r in (client.get(f"/v1/redemptions/{i}", headers=admin).json() for i in (6, 7))]
        ok = client.post(f"/v1/redemptions/{review[0]['id']}/approve", headers=admin | {"Idempotency-Key": "a"}).json()
        assert ok["status"] == "fulfilled" and len(ok["coupons"]) == 1
        no = client.post(f"/v1/redemptions/{review[1]['id']}/reject", headers=admin | {"Idempotency-Key": "b"}).json()
        assert no["status"] == "cancelled"
        b = client.get("/v1/members/alice/balance", headers=admin).json()
        assert (b["held"], b["available"]) == (0, 5000 - 600)
    assert [a["rule"] for a in alerts(factory)] == ["redemptions_per_hour", "redemptions_per_hour"]
    assert Ledger(factory).verify() == []
