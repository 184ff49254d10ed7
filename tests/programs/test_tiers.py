"""Tiers: real-time upgrade, the periodic evaluation with retention and grace, the score basis,
threshold discounts, and progress on the member API."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jifen.db import run_in_transaction, utcnow
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.outbox import OutboxMessage, emit
from jifen.programs import tiers
from jifen.programs.config import TierConfig
from jifen.programs.service import get_program
from tests.conftest import NOW, api_key
from tests.support.console_login import console_as
from tests.support.intake import add_members, configure, event, send, send_one

DAY = dt.timedelta(days=1)


def evaluate(factory, now):
    return run_in_transaction(factory, lambda s: tiers.evaluate(s, get_program(s, "default"), now))


def tier_of(factory, member_id):
    with factory() as s:
        mem = get_member(s, get_program(s, "default"), member_id)
        return mem.tier, mem.tier_grace_until


def test_upgrade_is_immediate_and_the_multiplier_applies_from_the_next_event(factory):
    configure(factory)
    add_members(factory, "alice")
    first = send_one(factory, "alice", amount=999, order_id="O1", at=NOW - 2 * DAY, now=NOW - 2 * DAY)
    assert first["tier"] == "normal" and "tier_upgraded" not in first
    second = send_one(factory, "alice", amount=100, order_id="O2", at=NOW - DAY, now=NOW - DAY)
    assert second["tier_upgraded"] == "silver" and second["points"] == 100  # ¥1,099 in the window ≥ ¥1,000
    third = send_one(factory, "alice", amount=100, order_id="O3", now=NOW)
    assert third["points"] == 110  # 100 × 1.1 as silver
    assert [r["rule"] for r in third["rules"]] == ["purchase_base", "tier_bonus"]


def test_downgrade_only_at_evaluation_after_grace_unless_retained(factory):
    configure(factory)
    add_members(factory, "alice", "bob", "carol")
    send_one(factory, "alice", amount=1200, order_id="A1", at=NOW - DAY, now=NOW - DAY)
    send_one(factory, "bob", amount=1200, order_id="B1", at=NOW - DAY, now=NOW - DAY)
    send_one(factory, "carol", amount=1200, order_id="C1", at=NOW - DAY, now=NOW - DAY)
    # Refunds lower spend, but nobody is downgraded in real time.
    send_one(factory, "alice", "refund", amount=300, order_id="A1")  # ¥900: below ¥1,000, above the ¥800 retention
    send_one(factory, "bob", "refund", amount=600, order_id="B1")  # ¥600: below retention
    assert tier_of(factory, "bob") == ("silver", None)
    summary = evaluate(factory, NOW)
    assert summary | {} == {"members": 3, "upgraded": 0, "kept": 2, "grace_started": 1, "in_grace": 0,
                            "downgraded": 0}
    assert tier_of(factory, "alice") == ("silver", None)
    assert tier_of(factory, "bob") == ("silver", NOW + 30 * DAY)
    assert evaluate(factory, NOW + 10 * DAY)["in_grace"] == 1
    # Bob buys again during grace and is back above retention: grace is lifted at once.
    send_one(factory, "bob", amount=300, order_id="B2", at=NOW + 11 * DAY, now=NOW + 11 * DAY)
    assert tier_of(factory, "bob") == ("silver", None)
    send_one(factory, "carol", "refund", amount=1200, order_id="C1", at=NOW + 11 * DAY, now=NOW + 11 * DAY)
    evaluate(factory, NOW + 12 * DAY)
    after = evaluate(factory, NOW + 43 * DAY)
    assert after["downgraded"] == 1 and tier_of(factory, "carol") == ("normal", None)
    assert tier_of(factory, "bob")[0] == "silver"


def test_spend_leaves_the_rolling_window(factory):
    configure(factory)
    add_members(factory, "alice")
    send_one(factory, "alice", amount=1500, order_id="A1", at=NOW, now=NOW)
    assert tier_of(factory, "alice")[0] == "silver"
    year = NOW + 366 * DAY
    assert evaluate(factory, year)["grace_started"] == 1
    assert evaluate(factory, year + 31 * DAY)["downgraded"] == 1


def test_score_basis_by_hand():
    cfg = TierConfig.model_validate({
        "basis": "score", "levels": [{"code": "a", "name": "A", "threshold": 0}],
        "score": {"spend": {"weight": "0.4", "target": 20000}, "frequency": {"weight": "0.3", "target": 24},
                  "repurchase": {"weight": "0.2", "target": 12}, "tenure": {"weight": "0.1", "target": 1095}}})
    values = {"spend": Decimal(5000), "frequency": Decimal(6), "repurchase": Decimal(3), "tenure": Decimal(2000)}
    # 40 × 5000/20000 + 30 × 6/24 + 20 × 3/12 + 10 × 1 = 10 + 7.5 + 5 + 10
    assert tiers.score(cfg, values) == Decimal("32.50")


def test_score_basis_end_to_end(factory):
    configure(factory, {"tiers": {
        "basis": "score", "window_days": 365, "grace_days": 0,
        "score": {"spend": {"weight": "0.5", "target": 1000}, "frequency": {"weight": "0.5", "target": 4}},
        "levels": [{"code": "normal", "name": "普通", "threshold": 0},
                   {"code": "star", "name": "星", "threshold": 60, "earn_multiplier": 2}]},
        "rules": {"rules": [{"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}}]}})
    add_members(factory, "alice")
    send_one(factory, "alice", amount=500, order_id="1", at=NOW - 40 * DAY, now=NOW - 40 * DAY)  # 25 + 12.5
    assert tier_of(factory, "alice")[0] == "normal"
    r = send_one(factory, "alice", amount=100, order_id="2", now=NOW)  # 30 + 25 = 55
    assert "tier_upgraded" not in r
    r = send_one(factory, "alice", amount=100, order_id="3", now=NOW)  # 35 + 37.5 = 72.5
    assert r["tier_upgraded"] == "star"


def test_threshold_discount_during_a_promotion(factory):
    configure(factory, {"tiers": {**_ladder(), "discounts": [
        {"starts_at": (NOW - DAY).isoformat(), "ends_at": (NOW + DAY).isoformat(), "factor": "0.8"}]}})
    add_members(factory, "alice", "bob")
    assert send_one(factory, "alice", amount=800, order_id="A", now=NOW)["tier_upgraded"] == "silver"
    assert "tier_upgraded" not in send_one(factory, "bob", amount=800, order_id="B", at=NOW + 2 * DAY,
                                           now=NOW + 2 * DAY)


def _ladder():
    from tests.support.intake import SEED_001

    return SEED_001["tiers"]


def test_member_api_shows_tier_and_progress(factory):
    configure(factory)
    add_members(factory, "alice")
    send_one(factory, "alice", amount=1200, order_id="A", now=NOW)
    with factory() as s:
        program = get_program(s, "default")
        p = tiers.progress(s, program, get_member(s, program, "alice"), NOW)
    assert (p["code"], p["name"], p["earn_multiplier"]) == ("silver", "銀卡", "1.1")
    assert p["measure"] == "1200.00" and p["next"] == {"code": "gold", "name": "金卡", "threshold": "5000",
                                                       "remaining": "3800.00"}


def test_a_batch_upgrades_mid_batch_exactly_as_events_one_by_one(factory):
    from tests.support.intake import event, send

    configure(factory)
    add_members(factory, "alice")
    at = [NOW - dt.timedelta(hours=h) for h in (5, 4, 3, 2, 1)]
    results = send(factory, event("alice", amount=900, order_id="1", at=at[0]),
                   event("alice", amount=200, order_id="2", at=at[1]),  # ¥1,100: silver from here
                   event("alice", "refund", amount=200, order_id="2", at=at[2]),
                   event("alice", amount=50, order_id="3", at=at[3]),  # × 1.1 as silver (no real-time downgrade)
                   event("alice", amount=60, order_id="4", at=at[4]), now=NOW)
    assert [r.get("tier_upgraded") for r in results] == [None, "silver", None, None, None]
    assert [r["points"] for r in results] == [990, 220, -220, 55, 66]


def test_the_job_runner_evaluates_once_per_period(factory):
    from jifen.jobs import evaluate_tiers_due
    from tests.support.intake import SEED_001

    configure(factory, {"tiers": {**SEED_001["tiers"], "evaluation": "quarterly"}})
    add_members(factory, "alice")
    send_one(factory, "alice", amount=1500, order_id="A", at=NOW, now=NOW)  # silver
    send_one(factory, "alice", "refund", amount=1500, order_id="A", at=NOW, now=NOW)
    q2 = dt.datetime(2026, 6, 20, tzinfo=dt.UTC)
    assert evaluate_tiers_due(factory, q2) == 1  # grace starts
    assert evaluate_tiers_due(factory, q2 + 5 * DAY) == 0  # same quarter: nothing to do
    assert tier_of(factory, "alice") == ("silver", q2 + 30 * DAY)
    q3 = dt.datetime(2026, 6, 30, 16, 0, tzinfo=dt.UTC)  # 1 July 00:00 in Shanghai: a new quarter
    assert evaluate_tiers_due(factory, q3 - dt.timedelta(seconds=1)) == 0
    assert evaluate_tiers_due(factory, q3) == 1
    assert tier_of(factory, "alice")[0] == "silver"  # still in grace (until 20 July)
    assert evaluate_tiers_due(factory, dt.datetime(2026, 10, 1, tzinfo=dt.UTC)) == 1
    assert tier_of(factory, "alice") == ("normal", None)  # grace over at the next quarter's evaluation


def test_a_registration_replayed_after_the_evaluation_answers_like_the_first(app, factory):
    """Issue 19 (5): the member view carried `tier.since` as a datetime; a replay of POST /v1/members, sent
    as it is (JSONResponse), was a 500 once an upgrade or evaluation had set it."""
    configure(factory, {"pending_days": {}}, now=utcnow() - DAY)
    at = (utcnow() - dt.timedelta(hours=1)).isoformat()
    with TestClient(app) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}

        def register():
            return client.post("/v1/members", json={"member_id": "alice"}, headers=admin | {"Idempotency-Key": "r"})

        assert register().status_code == 201
        for type_, amount in (("purchase", "1200"), ("refund", "600")):  # silver, then below its retention
            assert client.post("/v1/events", headers=admin, json={
                "event_id": type_, "member_id": "alice", "type": type_, "amount": amount, "order_id": "A",
                "occurred_at": at}).status_code == 201
        assert client.post("/v1/tiers/evaluate", headers=admin | {"Idempotency-Key": "e"}).json()["grace_started"] == 1
        again = register()
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        tier = again.json()["tier"]
        assert tier["code"] == "silver"
        assert dt.datetime.fromisoformat(tier["since"]) <= utcnow() < dt.datetime.fromisoformat(tier["grace_until"])
        assert again.json() == client.get("/v1/members/alice", headers=admin).json()
        console_as(client, app, "admin")  # the console's member page shows the grace from the same view
        assert "宽限至" in client.get("/console/members/alice").text


def _reference_evaluation(s, program, now):
    """The evaluation as it was written before the set path: ORM members one by one, a flush per batch."""
    cfg = tiers.tier_config(program)
    summary = dict.fromkeys(("members", "upgraded", "kept", "grace_started", "in_grace", "downgraded"), 0)
    program.tiers_evaluated_at = now
    pks = list(s.scalars(select(Member.id).where(Member.program_id == program.id).order_by(Member.id)))
    values = tiers.measures(s, program, cfg, now, pks)
    for mem in s.scalars(select(Member).where(Member.id.in_(pks)).order_by(Member.id)):
        summary["members"] += 1
        before = mem.tier
        summary[tiers._evaluate_one(cfg, mem, values.get(mem.id, Decimal(0)), now)] += 1
        if before is not None and mem.tier != before:
            emit(s, *tiers._tier_message(program, cfg, mem, before))
    s.flush()
    return summary


def _outcome(s, since_message):
    members = [tuple(r) for r in s.execute(select(Member.member_id, Member.tier, Member.tier_since,
                                                  Member.tier_grace_until).order_by(Member.id))]
    messages = [(r.topic, r.member_pk, r.payload) for r in s.scalars(
        select(OutboxMessage).where(OutboxMessage.id > since_message).order_by(OutboxMessage.id))]
    return members, messages


def test_the_set_evaluation_equals_member_by_member(factory):
    """Members at every tier, with and without grace (ended or not), measures above, between and below the
    thresholds and retentions: the batched evaluation (batches crossing the members) ends exactly as the
    member-by-member one — summary, tier columns, tier.changed messages in order."""
    configure(factory)
    rng = random.Random(5)
    ids = [f"t{i}" for i in range(60)]
    add_members(factory, *ids)
    amounts = [0, 300, 850, 1000, 4200, 5000, 17000, 25000]
    send(factory, *[event(mid, amount=amounts[i % len(amounts)], order_id=f"T{i}", at=NOW - 5 * DAY)
                    for i, mid in enumerate(ids) if amounts[i % len(amounts)]], now=NOW - 5 * DAY)
    codes = [None, "normal", "silver", "gold", "black_gold"]
    graces = [None, NOW - DAY, NOW + DAY]

    def scramble(s):
        for mem in s.scalars(select(Member).where(Member.member_id.in_(ids))):
            mem.tier = rng.choice(codes)
            mem.tier_since = None if mem.tier is None else NOW - 90 * DAY
            mem.tier_grace_until = None if mem.tier is None else rng.choice(graces)

    run_in_transaction(factory, scramble)
    with factory() as s:
        since = s.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))
        expected = _reference_evaluation(s, get_program(s, "default"), NOW)
        expected_outcome = _outcome(s, since)
        s.rollback()
    summary = run_in_transaction(factory, lambda s: tiers.evaluate(s, get_program(s, "default"), NOW, batch=7))
    with factory() as s:
        assert summary == expected
        assert _outcome(s, since) == expected_outcome
    assert all(summary[k] > 0 for k in expected), summary  # every outcome was exercised
    assert {m[2]["new_code"] for m in expected_outcome[1]} >= {"normal", "black_gold"}  # raised and lowered
