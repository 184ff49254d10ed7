"""Risk control: device / IP capture, scores with reasons, review (frozen points, held orders, spends as
holds), blocks, the review queue and its decisions, blacklists and freezes with appeal, honeypots."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jifen.db import run_in_transaction, utcnow
from jifen.errors import Forbidden, InsufficientPoints, InvalidRequest
from jifen.events.models import Event
from jifen.flows import points, review
from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry
from jifen.programs.config import ProgramConfig, RiskConfig
from jifen.programs.service import get_program
from jifen.risk import restrictions
from jifen.risk.models import MemberDevice, RiskCase
from tests.conftest import Ledger, api_key, keyed, m
from tests.risk.test_risk import FARM_RULES, alerts
from tests.support.intake import SEED_001, add_members, configure, event, send, send_one

FARM = {"device_id": "farm-phone-1", "ip": "100.64.0.9"}


def risk_cases(factory, **where) -> list[RiskCase]:
    with factory() as s:
        return list(s.scalars(select(RiskCase).filter_by(**where).order_by(RiskCase.id)))


def admin_headers(app, key="k") -> dict:
    return {"Authorization": f"Bearer {api_key(app, 'admin')}", "Idempotency-Key": key}


def test_a_point_farm_on_one_device_waits_in_review_with_nothing_spendable(factory):
    configure(factory, {"pending_days": {}} | FARM_RULES, now=utcnow() - dt.timedelta(days=1))
    now = utcnow()
    farm = [f"bot{i}" for i in range(20)]
    add_members(factory, *farm, joined_at=now - dt.timedelta(hours=2))  # registered today
    add_members(factory, "shopper")
    for bot in farm:  # the farm's phone signs every account in and checks in …
        send_one(factory, bot, "check_in", at=now - dt.timedelta(seconds=55), now=now, attributes=FARM)
    for bot in farm:  # … then shares five times a minute with each
        send(factory, *[event(bot, "share", at=now - dt.timedelta(seconds=50 - i), attributes=FARM) for i in range(5)],
             now=now)
    send_one(factory, "shopper", amount=300, order_id="S1", at=now - dt.timedelta(seconds=30), now=now,
             attributes={"device_id": "shopper-phone", "ip": "100.64.0.10"})
    with factory() as s:
        seen = s.scalars(select(MemberDevice).where(MemberDevice.value == "farm-phone-1")).all()
        assert len(seen) == 20 and {d.seen for d in seen} == {6}  # one row per account, every sighting counted
    ledger = Ledger(factory, now=now)
    for bot in farm:
        b = ledger.balances(bot)
        assert (b["available"], b["frozen"]) == (0, 5 + 5 * 30)  # none of it spendable before a person decides
        with pytest.raises(InsufficientPoints):
            ledger.run(lambda sc, s, bot=bot: ops.spend(sc, m(sc, bot), 1))
    open_cases = risk_cases(factory, status="open")
    assert {c.member_pk for c in open_cases} == {ledger.member(b).id for b in farm}
    assert {r["code"] for c in open_cases for r in c.reasons} >= {"shared_device", "earn_per_minute", "new_account"}
    assert {a["member_id"] for a in alerts(factory)} == set(farm)  # the shopper: no alert, no case
    assert ledger.balances("shopper")["available"] == 330 and ledger.balances("shopper")["frozen"] == 0

    def decide(bot, decision):
        pk = ledger.member(bot).id

        def tx(s):
            program = get_program(s, "default")
            sc = ops.Scope(s, program, program.wallets[0], now, actor="reviewer")
            for c in s.scalars(select(RiskCase).where(RiskCase.member_pk == pk, RiskCase.status == "open")):
                review.decide(sc, c, decision, "checked the device logs")
        run_in_transaction(factory, tx)

    decide("bot0", "approve")
    assert ledger.balances("bot0")["available"] == 155 and ledger.balances("bot0")["frozen"] == 0
    decide("bot1", "reject")
    assert ledger.balances("bot1")["available"] == 0 and ledger.balances("bot1")["frozen"] == 0
    with factory() as s:
        reversed_ = s.scalar(select(func.sum(JournalEntry.points)).where(
            JournalEntry.type == "reverse", JournalEntry.member_pk == ledger.member("bot1").id))
    assert reversed_ == 155  # taken back through ledger reversals of the awards
    decide("bot2", "freeze_member")
    with factory() as s:
        assert restrictions.restricted(s, [ledger.member("bot2").id], now)  # on the 90-day list
    assert ledger.verify() == []


def test_a_blocked_event_leaves_nothing_but_its_case(app, factory):
    configure(factory, {"pending_days": {}, "risk": {"earn_points_per_minute": {"limit": 100, "action": "block"},
                                                     "accounts_per_device": {"limit": 3, "action": "block"}}}
              | FARM_RULES, now=utcnow() - dt.timedelta(days=1))
    now = utcnow()
    add_members(factory, "alice", "bob", "carol", "dave")
    batch = [event("alice", "share", at=now - dt.timedelta(seconds=40 - i), event_id=f"sh{i}") for i in range(5)]
    results = send(factory, *batch, event("bob", "check_in", at=now - dt.timedelta(seconds=5)), now=now, strict=False)
    assert [r["status"] for r in results] == ["processed"] * 3 + ["rejected"] * 2 + ["processed"]
    assert {r["error"]["code"] for r in results[3:5]} == {"risk_blocked"}
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.event_id.in_(["sh3", "sh4"]))) == 0
    assert Ledger(factory, now=now).balances("alice")["available"] == 90  # the three that went through
    blocked = risk_cases(factory, action="block")
    assert [(c.subject_kind, c.subject_id) for c in blocked] == [("event", "sh3"), ("event", "sh4")]
    # One event on its own through the API: 403, and its case is kept beside the rolled-back request.
    shared = {"device_id": "one-phone"}
    for who in ("bob", "carol"):
        send_one(factory, who, "check_in", at=now, now=now, attributes=shared)
    with keyed(TestClient(app)) as client:
        headers = admin_headers(app)
        r = client.post("/v1/events", json={"event_id": "d1", "member_id": "dave", "type": "check_in",
                                            "occurred_at": now.isoformat(), "attributes": shared}, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "risk_blocked"
        # A genuine purchase from the same device is never refused: at most its points wait in review.
        r = client.post("/v1/events", json={"event_id": "d2", "member_id": "dave", "type": "purchase", "amount": "88",
                                            "order_id": "O-d2", "occurred_at": now.isoformat(), "attributes": shared},
                        headers=headers)
        assert r.status_code == 201 and r.json()["risk"]["action"] == "review" and r.json()["points"] == 88
    assert [c.subject_id for c in risk_cases(factory, action="block")][-1] == "d1"
    assert Ledger(factory, now=now).balances("dave")["frozen"] == 88
    assert Ledger(factory).verify() == []


def test_redemption_burst_and_honeypot_go_to_the_review_queue(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "alice", "mallory")
    Ledger(factory, now=utcnow()).run(lambda sc, s: [ops.award(sc, m(sc, x), 5000) for x in ("alice", "mallory")])
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        for code, honeypot in (("c5", False), ("gold_bar", True)):
            client.post("/v1/rewards", json={"code": code, "name": code, "kind": "coupon", "points": 100,
                                             "honeypot": honeypot, "coupon": {"threshold": 50, "discount": 5}},
                        headers=admin | {"Idempotency-Key": code})
        listed = client.get("/v1/rewards?member_id=mallory", headers=admin).json()
        assert "gold_bar" in [r["code"] for r in listed] and all("honeypot" not in r for r in listed)
        statuses = [client.post("/v1/redemptions", json={"member_id": "alice", "reward": "c5", "device_id": "a-phone"},
                                headers=admin | {"Idempotency-Key": f"r{i}"}).json()["status"] for i in range(6)]
        assert statuses == ["fulfilled"] * 5 + ["review"]
        trap = client.post("/v1/redemptions", json={"member_id": "mallory", "reward": "gold_bar"},
                           headers=admin | {"Idempotency-Key": "trap"}).json()
        assert trap["status"] == "review" and [r["code"] for r in trap["risk"]["reasons"]] == ["honeypot"]
        queue = client.get("/v1/risk/cases?status=open", headers=admin).json()
        assert [(c["member_id"], c["subject_kind"], c["reasons"][0]["code"]) for c in queue] == [
            ("alice", "redemption", "redemptions_per_hour"), ("mallory", "redemption", "honeypot")]
        burst, honey = queue
        ok = client.post(f"/v1/risk/cases/{burst['id']}/approve", json={"reason": "regular customer"},
                         headers=admin | {"Idempotency-Key": "d1"})
        assert ok.status_code == 200 and ok.json()["status"] == "approved"
        assert client.get(f"/v1/redemptions/{burst['subject_id']}", headers=admin).json()["status"] == "fulfilled"
        again = client.post(f"/v1/risk/cases/{burst['id']}/reject", json={"reason": "changed my mind"},
                            headers=admin | {"Idempotency-Key": "d2"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "case_decided"
        no_reason = client.post(f"/v1/risk/cases/{honey['id']}/reject", json={}, headers=admin | {"Idempotency-Key": "d3"})
        assert no_reason.status_code == 422
        frozen = client.post(f"/v1/risk/cases/{honey['id']}/freeze-member", json={"reason": "took the bait"},
                             headers=admin | {"Idempotency-Key": "d4"}).json()
        assert frozen["status"] == "rejected" and frozen["details"]["restriction_id"]
        assert client.get(f"/v1/redemptions/{honey['subject_id']}", headers=admin).json()["status"] == "cancelled"
        b = client.get("/v1/members/mallory/balance", headers=admin).json()
        assert (b["held"], b["available"]) == (0, 5000)
        again = client.post("/v1/redemptions", json={"member_id": "mallory", "reward": "c5"},
                            headers=admin | {"Idempotency-Key": "after"})
        assert again.status_code == 403 and again.json()["error"]["code"] == "member_restricted"
        assert client.get("/v1/risk/cases?status=open", headers=admin).json() == []
    assert {a["rule"] for a in alerts(factory)} == {"redemptions_per_hour", "honeypot"}
    assert Ledger(factory).verify() == []


def test_a_blacklisted_member_cannot_earn_spend_give_or_redeem_until_lifted(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "eve", "bob")
    Ledger(factory, now=utcnow()).run(lambda sc, s: [ops.award(sc, m(sc, x), 1000) for x in ("eve", "bob")])
    now = utcnow()
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        r = client.post("/v1/members/eve/restrictions", json={"kind": "blacklist", "reason": "card fraud"},
                        headers=admin | {"Idempotency-Key": "bl"}).json()
        assert r["permanent"] and r["in_force"]
        client.post("/v1/rewards", json={"code": "c5", "name": "c5", "kind": "coupon", "points": 100,
                                         "coupon": {"threshold": 50, "discount": 5}}, headers=admin | {"Idempotency-Key": "rw"})

        def refused(resp):
            return resp.status_code == 403 and resp.json()["error"]["code"] == "member_restricted"

        ev = {"member_id": "eve", "type": "purchase", "amount": "10", "occurred_at": now.isoformat()}
        assert refused(client.post("/v1/events", json=ev | {"event_id": "e1", "order_id": "o1"}, headers=admin))
        batch = client.post("/v1/events/batch", json={"events": [
            ev | {"event_id": "e2", "order_id": "o2"}, ev | {"event_id": "b1", "order_id": "o3", "member_id": "bob"}]},
            headers=admin).json()
        assert [x["status"] for x in batch["results"]] == ["rejected", "processed"]
        assert batch["results"][0]["error"]["code"] == "member_restricted"
        assert refused(client.post("/v1/points/spend", json={"member_id": "eve", "points": 10},
                                   headers=admin | {"Idempotency-Key": "s"}))
        assert refused(client.post("/v1/points/transfer", json={"from_member_id": "bob", "to_member_id": "eve",
                                                                "points": 10}, headers=admin | {"Idempotency-Key": "t"}))
        assert refused(client.post("/v1/redemptions", json={"member_id": "eve", "reward": "c5"},
                                   headers=admin | {"Idempotency-Key": "x"}))
        # The member appeals with their own token, on their own path; the restriction stays in force.
        token = client.post("/v1/members/eve/token", headers=admin).json()["token"]
        eve = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/members/eve/restrictions", headers=eve).json()[0]["status"] == "active"
        appealed = client.post(f"/v1/members/eve/restrictions/{r['id']}/appeal", json={"text": "it was my brother"},
                               headers=eve | {"Idempotency-Key": "ap"}).json()
        assert appealed["status"] == "appealed" and appealed["in_force"]
        assert client.post(f"/v1/members/bob/restrictions/{r['id']}/appeal", json={"text": "x"},
                           headers=eve | {"Idempotency-Key": "ap2"}).status_code == 403
        assert client.post(f"/v1/restrictions/{r['id']}/lift", json={"reason": "x"},
                           headers=eve | {"Idempotency-Key": "l0"}).status_code == 403
        assert refused(client.post("/v1/events", json=ev | {"event_id": "e3", "order_id": "o4"}, headers=admin))
        lifted = client.post(f"/v1/restrictions/{r['id']}/lift", json={"reason": "appeal upheld"},
                             headers=admin | {"Idempotency-Key": "l"}).json()
        assert lifted["status"] == "lifted" and not lifted["in_force"]
        assert client.post("/v1/events", json=ev | {"event_id": "e4", "order_id": "o5"}, headers=admin).status_code == 201
        assert client.post("/v1/redemptions", json={"member_id": "eve", "reward": "c5"},
                           headers=admin | {"Idempotency-Key": "y"}).json()["status"] == "fulfilled"
    assert Ledger(factory).verify() == []


def test_a_freeze_lasts_ninety_days(factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "frank")
    now = utcnow()

    member = Ledger(factory).member("frank")

    def freeze(s):
        return restrictions.impose(s, s.merge(member), "freeze", days=90, reason="farm", actor="t", now=now).until

    until = run_in_transaction(factory, freeze)
    assert until == now + dt.timedelta(days=90)
    for later in (now + dt.timedelta(days=1), now + dt.timedelta(days=89)):
        with pytest.raises(Forbidden, match="blacklisted or frozen"):
            Ledger(factory, now=later).run(lambda sc, s: points.award(sc, m(sc, "frank"), 10))
        assert send(factory, event("frank", "check_in", at=later), now=later, strict=False)[0]["error"]["code"] == \
            "member_restricted"
    later = now + dt.timedelta(days=91)
    Ledger(factory, now=later).run(lambda sc, s: points.award(sc, m(sc, "frank"), 10))
    assert send(factory, event("frank", "check_in", at=later), now=later)[0]["points"] == 5


def test_a_spend_in_review_is_a_hold_until_decided(app, factory):
    configure(factory, {"pending_days": {}, "risk": {"thresholds": {"flag": 100, "review": 150, "block": 1001}}},
              now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "newbie", joined_at=utcnow() - dt.timedelta(hours=1))
    Ledger(factory, now=utcnow()).run(lambda sc, s: ops.award(sc, m(sc, "newbie"), 500))
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        r = client.post("/v1/points/spend", json={"member_id": "newbie", "points": 200},
                        headers=admin | {"Idempotency-Key": "sp"}).json()
        assert r["status"] == "review" and r["risk"]["reasons"][0]["code"] == "new_account"
        assert client.get("/v1/members/newbie/balance", headers=admin).json()["held"] == 200
        (case,) = client.get("/v1/risk/cases", headers=admin).json()
        assert (case["subject_kind"], case["subject_id"]) == ("spend", str(r["hold_id"]))
        client.post(f"/v1/risk/cases/{case['id']}/approve", json={"reason": "ok"}, headers=admin | {"Idempotency-Key": "a"})
        b = client.get("/v1/members/newbie/balance", headers=admin).json()
        assert (b["held"], b["available"]) == (0, 300)
    assert Ledger(factory).verify() == []


def test_risk_section_of_the_programme_config():
    base = dict(SEED_001)
    assert RiskConfig().earn_points_per_minute.limit == 100 and RiskConfig().redemptions_per_hour.action == "review"
    cfg = ProgramConfig.model_validate(base | {"risk": {"redemptions_per_hour": {"limit": 3, "action": "block"},
                                                        "thresholds": {"flag": 500, "review": 700, "block": 900}}})
    assert cfg.risk.redemptions_per_hour.limit == 3 and cfg.risk.earn_points_per_minute.limit == 100
    assert cfg.risk.model_dump(exclude_unset=True).keys() == {"redemptions_per_hour", "thresholds"}
    for bad in ({"thresholds": {"flag": 900, "review": 800}}, {"accounts_per_device": {"limit": 5, "action": "ban"}},
                {"weights": {"no_such_reason": 10}}):
        with pytest.raises(ValueError):
            ProgramConfig.model_validate(base | {"risk": bad})


def test_the_anomaly_model_is_trained_stored_and_scores_a_whole_batch(factory):
    from jifen.risk import anomaly

    configure(factory, {"pending_days": {}} | FARM_RULES, now=utcnow() - dt.timedelta(days=40))
    now = utcnow()
    members = [f"n{i}" for i in range(60)]
    add_members(factory, *members)
    with pytest.raises(InvalidRequest, match="at least"):
        run_in_transaction(factory, lambda s: anomaly.train(s, get_program(s, "default"), now))
    normal = [event(mid, "purchase", at=now - dt.timedelta(days=d % 20, hours=i % 5), amount=50 + (i * 37) % 400,
                    order_id=f"o{mid}-{d}", attributes={"device_id": f"p-{mid}"})
              for i, mid in enumerate(members) for d in range(5)]
    send(factory, *normal, now=now)
    model = run_in_transaction(factory, lambda s: anomaly.train(s, get_program(s, "default"), now))
    assert model.n_samples == 300 and model.features == anomaly.FEATURES
    add_members(factory, "fresh", joined_at=now - dt.timedelta(minutes=5))
    odd = [event("fresh", "share", at=now - dt.timedelta(seconds=30 - i), attributes=FARM) for i in range(6)]
    usual = [event("n1", "purchase", at=now, amount=120, order_id="usual", attributes={"device_id": "p-n1"})]
    results = send(factory, *usual, *odd, now=now, strict=False)
    anomalous = [next((r["weight"] for r in x.get("risk", {}).get("reasons", []) if r["code"] == "anomaly"), 0)
                 for x in results]
    assert anomalous[0] == 0 and max(anomalous[1:]) > 0


def test_the_forest_as_arrays_scores_exactly_as_scikit_learn():
    import numpy as np
    from sklearn.ensemble import IsolationForest

    from jifen.risk.forest import SMALL, Forest

    rng = np.random.default_rng(7)
    spread = np.array([1, 10, 100, 24, 5, 5, 1000, 500, 1])
    model = IsolationForest(n_estimators=60, contamination=0.01, random_state=3).fit(rng.random((3000, 9)) * spread)
    forest = Forest(model)
    on_thresholds = np.array([[model.estimators_[t].tree_.threshold[0]] * 9 for t in range(5)])  # ties go left
    for x in (rng.random((1, 9)) * spread * 2, rng.random((SMALL, 9)) * spread * 2, on_thresholds,
              rng.random((SMALL + 1, 9)) * spread):
        assert np.allclose(forest.score_samples(x), model.score_samples(x), rtol=0, atol=1e-12)
    assert forest.offset_ == model.offset_


def test_a_batch_spread_over_a_month_reads_only_the_hours_around_its_events():
    from jifen.risk.scoring import spans

    t = dt.datetime(2026, 11, 11, 12, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    times = [t + dt.timedelta(minutes=20), t, t + dt.timedelta(days=9), t + dt.timedelta(minutes=70)]
    assert spans(times) == [(t - hour, t + dt.timedelta(minutes=70)), (t + dt.timedelta(days=9) - hour,
                                                                        t + dt.timedelta(days=9))]
    assert spans([]) == []


def test_every_way_points_move_refuses_a_restricted_member(app, factory):
    """The ledger does not check restrictions (it knows no risk decision): each caller does. One request
    per way points move at a client's request, each naming the blacklisted member, each refused."""
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "eve", "bob")
    Ledger(factory, now=utcnow()).run(lambda sc, s: [ops.award(sc, m(sc, x), 5000) for x in ("eve", "bob")])
    with TestClient(app) as client:
        keys = iter(range(1000))

        def post(path, body):
            return client.post(path, json=body, headers=admin_headers(app, f"k{next(keys)}"))

        for path, body in (("/v1/lotteries", {"code": "spin", "name": "轉盤", "cost": 50, "prizes": [
                               {"name": "謝謝參與", "weight": 1}]}),
                           ("/v1/partners", {"code": "air", "name": "航空", "unit": "里程", "points_per_unit_out": 100,
                                             "points_per_unit_in": 50, "min_units": 1, "max_units_per_day": 500}),
                           ("/v1/rewards", {"code": "tv", "name": "電視", "kind": "virtual", "points": 1500}),
                           ("/v1/members/bob/award-budget", {"points": 300}),
                           ("/v1/members/bob/friends", {"friend_id": "eve"})):
            assert post(path, body).status_code in (200, 201), path
        pool = post("/v1/pools", {"member_id": "bob", "reward": "tv"}).json()
        packet = post("/v1/red-packets", {"member_id": "bob", "points": 100, "shares": 2, "split": "equal"}).json()
        assert post("/v1/members/eve/restrictions", {"kind": "blacklist", "reason": "card fraud"}).status_code == 201
        for path, body in (
                ("/v1/points/award", {"member_id": "eve", "points": 10}),
                ("/v1/holds", {"member_id": "eve", "points": 10}),
                ("/v1/gifts", {"from_member_id": "bob", "to_member_id": "eve", "points": 10}),
                ("/v1/ugc-awards", {"from_member_id": "bob", "to_member_id": "eve", "points": 60, "reason": "好評"}),
                ("/v1/red-packets", {"member_id": "eve", "points": 100, "shares": 2, "split": "equal"}),
                (f"/v1/red-packets/{packet['id']}/claim", {"member_id": "eve"}),
                (f"/v1/pools/{pool['id']}/contribute", {"member_id": "eve", "points": 100}),
                ("/v1/lotteries/spin/draw", {"member_id": "eve"}),
                ("/v1/partners/air/exchanges", {"member_id": "eve", "direction": "in", "units": 2, "reference": "MU-1"}),
                ("/v1/partners/air/exchanges", {"member_id": "eve", "direction": "out", "units": 2, "reference": "MU-2"})):
            r = post(path, body)
            assert (r.status_code, r.json()["error"]["code"]) == (403, "member_restricted"), (path, r.json())
    assert Ledger(factory).balances("eve")["available"] == 5000
    assert Ledger(factory).verify() == []
