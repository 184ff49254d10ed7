"""Automations: conditions through the bounded CEL path, member facts, seed 003's low-balance SMS and seed 001's
win-back, actions through the outbox, the ledger and the mall, once per occurrence, dry runs that change
nothing, schedule and event triggers, the API, and concurrent runs on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jifen.automations import service
from jifen.automations.facts import member_facts
from jifen.automations.models import Automation, AutomationAction, AutomationReach, AutomationRun
from jifen.automations.schemas import AutomationIn
from jifen.db import make_engine, make_sessionmaker, run_in_transaction
from jifen.engagement.tasks import create_task
from jifen.errors import InvalidRequest
from jifen.flows import automate
from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry
from jifen.mall.models import Coupon, Reward
from jifen.members.service import get_member
from jifen.notify.templates import channels_for
from jifen.outbox import OutboxMessage
from jifen.programs.service import get_program
from jifen.risk import restrictions
from tests.conftest import Ledger, api_key, keyed, m
from tests.support.intake import add_members, configure, event, send

NOW = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)
LOW_BALANCE = {"code": "low_balance_sms", "name": "003", "trigger": "schedule", "every": "day",
               "condition": "member.balance < 200 && member.days_since_purchase >= 30",
               "actions": [{"type": "message", "channels": ["sms"], "title": "回歸優惠",
                            "body": "餘額{balance}分,{days_since_purchase}天未購物"}]}


def history(factory):
    """alice bought 40 days ago and has 150 points; bob bought 5 days ago (100 points); carol never bought
    (joined 400 days ago, 1,000 points). Purchases earn nothing here: balances are what the test awards."""
    configure(factory, {"pending_days": {}, "rules": {"rules": [], "allow_empty": True}}, now=NOW - dt.timedelta(days=500))
    add_members(factory, "alice", "bob", "carol", joined_at=NOW - dt.timedelta(days=400))
    send(factory, event("alice", amount=30, order_id="A1", at=NOW - dt.timedelta(days=40)), now=NOW)
    send(factory, event("bob", amount=30, order_id="B1", at=NOW - dt.timedelta(days=5)), now=NOW)
    ledger = Ledger(factory, now=NOW - dt.timedelta(days=1))
    for who, points in (("alice", 150), ("bob", 100), ("carol", 1000)):
        ledger.run(lambda sc, s, who=who, points=points: ops.award(sc, m(sc, who), points))


def save(factory, body: dict, now=NOW) -> Automation:
    return run_in_transaction(factory, lambda s: service.save(s, get_program(s, "default"),
                                                              AutomationIn.model_validate(body), now))


def count(factory, model, *where) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def outbox(factory) -> list[dict]:
    with factory() as s:
        return [msg.payload for msg in s.scalars(select(OutboxMessage).where(
            OutboxMessage.topic == "marketing.message").order_by(OutboxMessage.id))]


def test_member_facts_by_hand(factory):
    history(factory)
    with factory() as s:
        program = get_program(s, "default")
        facts = {f["id"]: f for f in member_facts(s, program, NOW).values()}
    assert facts["alice"] == {"id": "alice", "tier": facts["alice"]["tier"], "segments": [], "balance": 150,
                              "purchases": 1, "days_since_purchase": 40, "days_inactive": 40, "joined_days": 400,
                              "expiring_points": 0,
                              "last_purchase": (NOW - dt.timedelta(days=40)).astimezone(
                                  dt.timezone(dt.timedelta(hours=8))).date().isoformat()}
    assert (facts["bob"]["days_since_purchase"], facts["bob"]["balance"]) == (5, 100)
    # Never bought: the lapse runs from joining.
    assert (facts["carol"]["purchases"], facts["carol"]["days_since_purchase"], facts["carol"]["last_purchase"]) == (
        0, 400, "")


@pytest.mark.parametrize("condition, says", [
    ("member.balance <", "condition:"),
    ("event.amount > 100", "not event"),
    ("count('purchase', '30d') > 1", "counts an event's history"),
    ("member.nope(1)", "unknown function"),
    ("member.balance / 0 > 1", "fails on"),
    ("[" * 30 + "1" + "]" * 30 + " == []", "nested"),
    (" || ".join(["1 < 2"] * 150), "too long"),
    ("member.segments.map(a, member.segments.map(b, member.segments.map(c, 1))) == []", "too costly"),
])
def test_bad_conditions_are_refused_and_nothing_is_saved(factory, condition, says):
    with pytest.raises(InvalidRequest) as caught:
        save(factory, LOW_BALANCE | {"condition": condition})
    assert caught.value.code == "invalid_condition" and says in caught.value.message, caught.value.message
    assert count(factory, Automation) == 0


def test_003_low_balance_sms_dry_run_then_once_per_lapse(factory):
    history(factory)
    auto = save(factory, LOW_BALANCE)
    dry = automate.run(factory, auto.program_id, "low_balance_sms", NOW, dry_run=True)
    assert (dry["evaluated"], dry["matched"], dry["run_id"]) == (3, 1, None)
    (alice,) = dry["members"]
    assert alice["member_id"] == "alice" and alice["status"] == "would"
    assert alice["actions"] == [{"type": "message", "channels": ["sms"], "title": "回歸優惠", "body": "餘額150分,40天未購物"}]
    assert outbox(factory) == [] and count(factory, AutomationRun) == 0 and count(factory, AutomationReach) == 0

    done = automate.run(factory, auto.program_id, "low_balance_sms", NOW, actor="tester")
    assert (done["matched"], done["acted"], done["repeats"]) == (1, 1, 0)
    sent = outbox(factory)
    assert [(p["channels"], p["body"], p["automation"]) for p in sent] == [(["sms"], "餘額150分,40天未購物",
                                                                            "low_balance_sms")]
    with factory() as s:
        (log,) = s.scalars(select(AutomationAction)).all()
        assert (log.run_id, log.status, log.done[0]["body"]) == (done["run_id"], "done", "餘額150分,40天未購物")
    # Tomorrow, still lapsed: already reached for this lapse, nothing sent again; the dry run says so too.
    later = NOW + dt.timedelta(days=1)
    assert automate.run(factory, auto.program_id, "low_balance_sms", later, dry_run=True)["members"][0]["status"] == "repeat"
    again = automate.run(factory, auto.program_id, "low_balance_sms", later)
    assert (again["acted"], again["repeats"]) == (0, 1) and len(outbox(factory)) == 1
    # A purchase ends the lapse; 30 days later alice lapses again and hears again.
    send(factory, event("alice", amount=30, order_id="A2", at=NOW + dt.timedelta(days=2)), now=NOW + dt.timedelta(days=2))
    month = NOW + dt.timedelta(days=33)
    acted = {x["member_id"]: x for x in automate.run(factory, auto.program_id, "low_balance_sms", month)["members"]}
    assert acted["alice"]["status"] == "done" and acted["alice"]["occurrence"] != alice["occurrence"]
    assert acted["bob"]["status"] == "done"  # (bob's last purchase is 38 days old by now)
    assert len(outbox(factory)) == 3


def test_award_and_coupon_actions_go_through_the_ledger_and_mall_once(factory, ledger):
    history(factory)
    with factory() as s, s.begin():
        program = get_program(s, "default")
        s.add(Reward(program_id=program.id, code="c30", name="滿30減3", kind="coupon", category="優惠券", points=300,
                     coupon={"threshold": 30, "discount": 3, "valid_days": 30}))
    save(factory, {"code": "winback_30", "name": "001", "trigger": "schedule", "every": "day",
                   "condition": "member.purchases > 0 && member.days_since_purchase >= 30",
                   "actions": [{"type": "award", "points": 200, "reason": "召回禮"}, {"type": "coupon", "reward": "c30"}]})
    for _ in range(2):
        automate.run(factory, 1, "winback_30", NOW)
    # alice: +200 once, and a coupon paid for by a gift of its 300 points (awarded, then spent on it).
    assert ledger.balances("alice")["available"] == 150 + 200
    with factory() as s:
        alice = get_member(s, get_program(s, "default"), "alice")
        assert s.scalar(select(func.count()).select_from(Coupon).where(Coupon.member_pk == alice.id)) == 1
        (log,) = s.scalars(select(AutomationAction).where(AutomationAction.status == "done")).all()
        assert log.points == 500 and [a["type"] for a in log.done] == ["award", "coupon"]
    assert ledger.verify() == []  # double entry, balances = postings = lots, the chain


def test_a_refused_action_undoes_the_members_others_and_is_logged(factory, ledger):
    history(factory)
    with factory() as s, s.begin():
        s.add(Reward(program_id=get_program(s, "default").id, code="gone", name="售罄券", kind="coupon",
                     category="優惠券", points=100, stock=0, coupon={"threshold": 1, "discount": 1}))
    save(factory, {"code": "gift", "name": "gift", "trigger": "schedule", "every": "day",
                   "condition": "member.id == 'alice'",
                   "actions": [{"type": "award", "points": 50}, {"type": "coupon", "reward": "gone"}]})
    report = automate.run(factory, 1, "gift", NOW)
    assert (report["acted"], report["failed"]) == (0, 1) and "out of stock" in report["members"][0]["error"]
    assert ledger.balances("alice")["available"] == 150  # the award went with the refused coupon
    assert count(factory, AutomationReach) == 0  # so the next run tries again


def test_task_invitation_names_the_task(factory):
    history(factory)
    run_in_transaction(factory, lambda s: create_task(s, get_program(s, "default"), {
        "code": "first_review", "name": "首次評價", "period": "once", "events": ["review"], "points": 30}))
    save(factory, {"code": "invite", "name": "invite", "trigger": "schedule", "every": "week",
                   "condition": "member.id == 'carol'", "actions": [{"type": "task", "task": "first_review"}]})
    automate.run(factory, 1, "invite", NOW)
    assert [(p["title"], p["body"], p["channels"]) for p in outbox(factory)] == [
        ("首次評價", "完成任務「首次評價」可得30分", ["inapp"])]
    with pytest.raises(InvalidRequest, match="no task 'nope'"):
        save(factory, {"code": "invite2", "name": "x", "trigger": "schedule", "every": "week", "condition": "true",
                       "actions": [{"type": "task", "task": "nope"}]})


def test_schedule_and_event_triggers_run_from_the_jobs(factory):
    history(factory)
    save(factory, LOW_BALANCE)
    save(factory, {"code": "welcome_back", "name": "on check-in", "trigger": "event", "event_type": "check_in",
                   "condition": "member.days_inactive >= 0", "repeat": "day",
                   "actions": [{"type": "message", "channels": ["inapp"], "title": "簽到", "body": "{id} 簽到了"}]})
    assert automate.run_due(factory, NOW) == 1  # the schedule; no check-in yet
    assert automate.run_due(factory, NOW + dt.timedelta(hours=1)) == 0  # next due in a day
    send(factory, event("bob", "check_in", at=NOW + dt.timedelta(hours=2)), now=NOW + dt.timedelta(hours=2))
    assert automate.run_due(factory, NOW + dt.timedelta(hours=3)) == 1
    assert [p["body"] for p in outbox(factory)] == ["餘額150分,40天未購物", "bob 簽到了"]
    assert automate.run_due(factory, NOW + dt.timedelta(hours=4)) == 0  # the check-in was seen
    with factory() as s:
        causes = [r.cause for r in s.scalars(select(AutomationRun).order_by(AutomationRun.id))]
    assert causes == ["schedule", "event"]


def test_marketing_channels_follow_the_message():
    assert channels_for("marketing.message", {"channels": ["sms"]}) == ("sms",)
    assert channels_for("marketing.message", {}) == ("inapp", "email", "sms", "wechat")
    assert channels_for("points.expiring", {"channels": ["sms"]}) == ("inapp",)  # transactional: not its choice


def test_automations_api(app, factory):
    history(factory)
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        r = client.post("/v1/automations", json=LOW_BALANCE, headers=admin)
        assert r.status_code == 201 and r.json()["next_run_at"] is not None
        bad = client.post("/v1/automations", json=LOW_BALANCE | {"code": "x", "condition": "event.amount > 1"},
                          headers=admin)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_condition"
        assert client.post("/v1/automations", json=LOW_BALANCE | {"code": "y", "every": None},
                           headers=admin).json()["error"]["code"] == "invalid_trigger"
        assert [a["code"] for a in client.get("/v1/automations", headers=admin).json()] == ["low_balance_sms"]
        dry = client.post("/v1/automations/low_balance_sms/run", json={"dry_run": True}, headers=admin).json()
        assert dry["run_id"] is None and dry["members"][0]["status"] == "would" and outbox(factory) == []
        done = client.post("/v1/automations/low_balance_sms/run", json={}, headers=admin).json()
        log = client.get(f"/v1/automation-runs/{done['run_id']}", headers=admin).json()
        # (the API runs at today's date: bob's purchase of 2026-05 is a lapse by then too)
        assert log["acted"] == 2 and {x["member_id"] for x in log["members"]} == {"alice", "bob"}
        assert all(x["status"] == "done" and x["actions"][0]["channels"] == ["sms"] for x in log["members"])
        assert [r["run_id"] for r in client.get("/v1/automations/low_balance_sms/runs", headers=admin).json()] == [
            done["run_id"]]
        assert client.get("/v1/automations/nope", headers=admin).json()["error"]["code"] == "unknown_automation"
        assert client.get("/v1/automation-runs/999", headers=admin).status_code == 404
        finance = {"Authorization": f"Bearer {api_key(app, 'finance')}"}
        assert client.post("/v1/automations", json=LOW_BALANCE, headers=finance).status_code == 403


def test_concurrent_runs_act_once_on_postgresql(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    try:
        history(factory)
        save(factory, LOW_BALANCE | {"condition": "true", "actions": [{"type": "award", "points": 7}]})
        reports, barrier = [], threading.Barrier(4)

        def go():
            barrier.wait()
            reports.append(automate.run(factory, 1, "low_balance_sms", NOW))

        threads = [threading.Thread(target=go) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r["acted"] for r in reports) == 3 and sum(r["repeats"] for r in reports) == 9
        ledger = Ledger(factory)
        assert [ledger.balances(who)["available"] for who in ("alice", "bob", "carol")] == [157, 107, 1007]
    finally:
        engine.dispose()


def test_awards_by_the_set_path_are_ledger_entries_with_their_reference(factory, ledger):
    history(factory)
    run_in_transaction(factory, lambda s: restrictions.impose(s, get_member(s, get_program(s, "default"), "bob"),
                                                             "blacklist", days=None, reason="ring", actor="t", now=NOW))
    save(factory, {"code": "winback_60", "name": "001", "trigger": "schedule", "every": "day",
                   "condition": "member.days_since_purchase >= 30 || member.id == 'bob'",
                   "actions": [{"type": "award", "points": 200, "reason": "召回禮"},
                               {"type": "message", "channels": ["inapp"], "title": "回歸禮", "body": "送您200積分"}]})
    first = automate.run(factory, 1, "winback_60", NOW)
    status = {x["member_id"]: x["status"] for x in first["members"]}
    assert status == {"alice": "done", "bob": "failed", "carol": "done"}  # bob is blacklisted: earns nothing
    assert "blacklisted" in next(x["error"] for x in first["members"] if x["member_id"] == "bob")
    again = automate.run(factory, 1, "winback_60", NOW + dt.timedelta(days=1))
    assert (again["repeats"], again["failed"]) == (2, 1)
    assert [ledger.balances(who)["available"] for who in ("alice", "bob", "carol")] == [350, 100, 1200]
    assert ledger.verify() == []
    with factory() as s:
        refs = sorted(s.scalars(select(JournalEntry.reference).where(JournalEntry.reason == "召回禮")))
    alice = next(x for x in first["members"] if x["member_id"] == "alice")
    assert refs == sorted([f"automation:winback_60:{alice['occurrence']}", "automation:winback_60:lapse:never"])
    assert [p["member_pk"] for p in outbox(factory)] == sorted(
        get_member_pk(factory, who) for who in ("alice", "carol"))  # bob's message went with his refused points


def get_member_pk(factory, member_id: str) -> int:
    with factory() as s:
        return get_member(s, get_program(s, "default"), member_id).id


def test_console_automations_pages(app, factory):
    from tests.support.console_login import console_as

    history(factory)
    save(factory, LOW_BALANCE)
    run_id = automate.run(factory, 1, "low_balance_sms", NOW)["run_id"]
    with TestClient(app) as client:
        console_as(client, app, "operator")
        page = client.get("/console/automations").text
        assert "low_balance_sms" in page and "member.balance &lt; 200" in page and "每天" in page
        assert f'href="/console/automations/runs/{run_id}"' in page
        run = client.get(f"/console/automations/runs/{run_id}").text
        assert "alice" in run and "餘額150分,40天未購物" in run and "已执行" in run
        assert client.get("/console/automations/runs/999").status_code == 404


def test_one_failing_automation_stops_no_other_in_the_jobs(factory, caplog):
    from jifen.engagement.models import Task

    history(factory)
    run_in_transaction(factory, lambda s: create_task(s, get_program(s, "default"), {
        "code": "gone", "name": "將刪除", "period": "once", "events": ["review"]}))
    save(factory, {"code": "a_broken", "name": "broken", "trigger": "schedule", "every": "day", "condition": "true",
                   "actions": [{"type": "task", "task": "gone"}]})
    save(factory, LOW_BALANCE)
    run_in_transaction(factory, lambda s: s.execute(Task.__table__.delete()))
    assert automate.run_due(factory, NOW) == 2
    assert [p["automation"] for p in outbox(factory)] == ["low_balance_sms"]
    assert "automation a_broken of programme 1 failed" in caplog.text
