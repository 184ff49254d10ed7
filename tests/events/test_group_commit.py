"""Group commit of single events (flows/group_commit.py): concurrent POST /v1/events requests committed in one
transaction, each answered exactly as it would be alone.

The tests gather deterministically: the window is long and the group closes when its `max_size` requests
have arrived, so every request sent at once lands in one group (the window is a bound, not a measurement).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from jifen.api import create_app
from jifen.db import utcnow
from jifen.events.models import Event
from jifen.flows import group_commit
from jifen.flows.group_commit import GroupCommit
from jifen.risk.models import RiskCase
from jifen.security.audit import AuditEntry
from tests.conftest import Ledger, api_key, keyed
from tests.risk.test_risk import FARM_RULES, alerts
from tests.support.intake import add_members, configure
from tests.support.racing import race

LONG_WINDOW_MS = 60_000  # never reached: each test's group closes on its size


@pytest.fixture
def groups(monkeypatch):
    """The size of each group the worker ran through the intake."""
    sizes: list[int] = []
    ingest = group_commit.ingest

    def counted(session, program, events, **kw):
        sizes.append(len(events))
        return ingest(session, program, events, **kw)

    monkeypatch.setattr(group_commit, "ingest", counted)
    return sizes


def gather(app, size: int) -> None:
    """The app's next `size` concurrent single events go into one group."""
    app.state.group_commit = GroupCommit(app.state.sessions, LONG_WINDOW_MS, size)


def at_once(client, headers, bodies: list[dict]) -> list:
    """Each body POSTed to /v1/events from its own thread, all at once; the responses in the bodies' order."""
    responses: list = [None] * len(bodies)

    def post(i):
        responses[i] = client.post("/v1/events", json=bodies[i], headers=headers)

    assert race(post, range(len(bodies))) == []
    return responses


def one_by_one(app, client, headers, bodies: list[dict]) -> list:
    """Each body POSTed after the previous one's answer, with group commit off (each request alone)."""
    grouping = app.state.group_commit
    grouping.stop()
    app.state.group_commit = GroupCommit(app.state.sessions, 0, 1)
    try:
        return [client.post("/v1/events", json=b, headers=headers) for b in bodies]
    finally:
        app.state.group_commit = grouping
        grouping.start()


def purchase(event_id: str, member: str, amount: str, at: dt.datetime, **kw) -> dict:
    return {"event_id": event_id, "member_id": member, "type": "purchase", "amount": amount,
            "occurred_at": at.isoformat(), "order_id": f"O-{event_id}", **kw}


def stored(factory, ids) -> set[str]:
    with factory() as s:
        return set(s.scalars(select(Event.event_id).where(Event.event_id.in_(list(ids)))))


def answer(r) -> tuple[int, dict]:
    """A response as the client sees it, minus what names the event itself."""
    body = {k: v for k, v in r.json().items() if k not in ("event_id", "member_id", "entries")}
    return r.status_code, body


@pytest.fixture
def setup(factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    members = [f"{side}{i}" for side in ("g", "s") for i in range(4)]
    add_members(factory, *members)
    return utcnow() - dt.timedelta(hours=1)


def test_concurrent_events_commit_as_one_group_each_answered_as_sent_one_by_one(app, factory, setup, groups):
    """Members g0..g3 get their events concurrently, s0..s3 the same events one by one: same answers, same
    balances. Each member's third purchase comes after a tier upgrade earned by the first two."""
    base = setup
    amounts = ["600.00", "450.00", "120.00"]

    def bodies(side):
        return [purchase(f"{side}{m}-{k}", f"{side}{m}", amounts[k], base + dt.timedelta(minutes=m, seconds=k))
                for m in range(4) for k in range(3)]

    gather(app, 12)
    with keyed(TestClient(app)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        grouped = at_once(client, headers, bodies("g"))
        assert groups == [12]
        alone = one_by_one(app, client, headers, bodies("s"))
    assert [r.status_code for r in grouped] == [201] * 12
    assert [r.headers["Idempotent-Replayed"] for r in grouped] == ["false"] * 12
    assert [answer(r) for r in grouped] == [answer(r) for r in alone]
    assert any("tier_upgraded" in r.json() for r in grouped)  # (the case the ordering matters for)
    ledger = Ledger(factory)
    for i in range(4):
        assert ledger.balances(f"g{i}") == ledger.balances(f"s{i}") and ledger.balances(f"g{i}")["available"] > 0
    assert ledger.verify() == []
    with factory() as s:  # each grouped request's audit line shows what the transaction committing it changed
        lines = s.scalars(select(AuditEntry).where(AuditEntry.path == "/v1/events").order_by(AuditEntry.seq)).all()
    upgrades = [sorted(c["id"] for c in e.detail["changes"] if c["table"] == "members") for e in lines]
    assert upgrades[:12] == [upgrades[0]] * 12 and len(upgrades[0]) == 4  # the group's four members' upgrades
    assert all(len(u) <= 1 for u in upgrades[12:])  # one by one: at most the request's own member


def test_a_refused_request_gets_its_own_error_and_the_others_commit(app, factory, setup, groups):
    base = setup
    bodies = [
        purchase("ok1", "g0", "100.00", base),
        purchase("nobody", "ghost", "10.00", base),  # 404 unknown_member
        purchase("dup-a", "g1", "10.00", base, order_id="O-shared"),  # one of these two takes the order …
        purchase("dup-b", "g2", "10.00", base, order_id="O-shared"),  # … the other: 409 duplicate_order
        purchase("twice", "g3", "20.00", base + dt.timedelta(seconds=1)),  # one 201, the other a 200 replay
        purchase("twice", "g3", "20.00", base + dt.timedelta(seconds=1)),
        purchase("clash", "g0", "30.00", base + dt.timedelta(seconds=2)),  # one 201, the other event_id_reused
        purchase("clash", "g0", "31.00", base + dt.timedelta(seconds=2), order_id="O-clash-2"),
        purchase("future", "g1", "10.00", utcnow() + dt.timedelta(days=1)),  # 422 occurred_in_future
        purchase("ok2", "g2", "50.00", base + dt.timedelta(seconds=3)),
    ]
    gather(app, len(bodies))
    with keyed(TestClient(app)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        grouped = at_once(client, headers, bodies)
        assert groups == [len(bodies)]
        codes = [r.status_code for r in grouped]
        assert codes[0] == 201 and codes[9] == 201
        assert codes[1] == 404 and grouped[1].json()["error"]["code"] == "unknown_member"
        assert sorted(codes[2:4]) == [201, 409]
        assert sorted(codes[4:6]) == [200, 201]
        replay = grouped[4] if codes[4] == 200 else grouped[5]
        assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["status"] == "replayed"
        assert sorted(codes[6:8]) == [201, 409]
        assert codes[8] == 422 and grouped[8].json()["error"]["code"] == "occurred_in_future"
        # Each refusal is the one the same request gets alone, sent again now: status, code, message, details.
        for r, body in zip(grouped, bodies, strict=True):
            if r.status_code >= 400:
                (again,) = one_by_one(app, client, headers, [body])
                assert (again.status_code, again.json()) == (r.status_code, r.json())
        won = 2 if codes[2] == 201 else 3
        assert grouped[5 - won].json()["error"]["code"] == "duplicate_order"
        kept = 6 if codes[6] == 201 else 7
        assert grouped[13 - kept].json()["error"]["code"] == "event_id_reused"
    with factory() as s:  # the body kept is the one answered 201
        assert str(s.scalar(select(Event.amount).where(Event.event_id == "clash"))) == bodies[kept]["amount"]
    assert stored(factory, [b["event_id"] for b in bodies]) == {"ok1", "ok2", "dup-a", "dup-b", "twice", "clash"} - {
        ("dup-b" if won == 2 else "dup-a")}
    assert Ledger(factory).verify() == []


def test_a_risk_blocked_request_in_a_group_leaves_one_case_and_alert(app, factory, groups):
    """Four shares in a minute earn 120 points against a limit of 100 that blocks: the last is refused, in a
    group as one by one (alice one by one, bob in a group), with exactly one case and one alert each."""
    configure(factory, {"pending_days": {}, "risk": {"earn_points_per_minute": {"limit": 100, "action": "block"}}}
              | FARM_RULES, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "alice", "bob")
    now = utcnow()

    def shares(who):
        return [{"event_id": f"{who}-sh{i}", "member_id": who, "type": "share",
                 "occurred_at": (now - dt.timedelta(seconds=40 - i)).isoformat()} for i in range(4)]

    gather(app, 4)
    with keyed(TestClient(app)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        alone = one_by_one(app, client, headers, shares("alice"))
        grouped = at_once(client, headers, shares("bob"))
    assert groups == [4]
    assert [r.status_code for r in grouped] == [r.status_code for r in alone] == [201] * 3 + [403]
    assert [answer(r) for r in grouped] == [answer(r) for r in alone]
    with factory() as s:
        cases = s.scalars(select(RiskCase.subject_id).where(RiskCase.action == "block").order_by(RiskCase.id)).all()
    assert sorted(cases) == ["alice-sh3", "bob-sh3"]
    assert sorted(a["subject_id"] for a in alerts(factory) if a["action"] == "block") == sorted(cases)
    assert stored(factory, ["bob-sh3"]) == set()
    assert Ledger(factory).balances("bob") == Ledger(factory).balances("alice")


@pytest.mark.parametrize("failure", ["retryable", "persistent"])
def test_a_failed_group_is_retried_or_run_request_by_request(app, factory, setup, monkeypatch, failure):
    """A lock failure is retried as a group; any other failure runs each request alone. Either way every
    request gets the answer it gets one by one."""
    sizes: list[int] = []
    ingest = group_commit.ingest

    def failing(session, program, events, **kw):
        sizes.append(len(events))
        if failure == "persistent" or len(sizes) == 1:
            if failure == "retryable":
                raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
            raise RuntimeError("the group's transaction fails")
        return ingest(session, program, events, **kw)

    monkeypatch.setattr(group_commit, "ingest", failing)
    base = setup

    def bodies(side):
        return [purchase(f"{side}{m}-{k}", f"{side}{m}", f"{100 + 10 * k}.00", base + dt.timedelta(seconds=k))
                for m in range(2) for k in range(3)]

    gather(app, 6)
    with keyed(TestClient(app)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        grouped = at_once(client, headers, bodies("g"))
        alone = one_by_one(app, client, headers, bodies("s"))
    assert sizes == ([6, 6] if failure == "retryable" else [6])
    assert [answer(r) for r in grouped] == [answer(r) for r in alone] and {r.status_code for r in grouped} == {201}
    ledger = Ledger(factory)
    assert [ledger.balances(f"g{i}") for i in range(2)] == [ledger.balances(f"s{i}") for i in range(2)]


def test_nothing_is_acknowledged_before_its_commit(app, factory, setup, groups):
    """A transaction holding the event `poison` dies at its commit (as a process killed before it would): the
    group fails, each request runs alone, and only `poison` fails. Every request answered 2xx has its event
    stored; the one answered with an error has nothing."""
    base = setup

    def killed_at_commit(session):
        if session.scalar(select(func.count()).select_from(Event).where(Event.event_id == "poison")):
            raise RuntimeError("killed before commit")

    sa_event.listen(app.state.sessions, "before_commit", killed_at_commit)
    bodies = [purchase(f"e{i}", f"g{i % 4}", "80.00", base + dt.timedelta(seconds=i)) for i in range(7)]
    bodies.insert(3, purchase("poison", "g1", "80.00", base))
    gather(app, len(bodies))
    with keyed(TestClient(app, raise_server_exceptions=False)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        responses = at_once(client, headers, bodies)
    assert groups == [len(bodies)]
    answered = {b["event_id"] for b, r in zip(bodies, responses, strict=True) if r.status_code < 300}
    failed = {b["event_id"] for b, r in zip(bodies, responses, strict=True) if r.status_code >= 500}
    assert (answered, failed) == ({f"e{i}" for i in range(7)}, {"poison"})
    assert stored(factory, [b["event_id"] for b in bodies]) == answered
    ledger = Ledger(factory)
    assert sum(ledger.balances(f"g{i}")["available"] for i in range(4)) == sum(
        r.json()["points"] for r in responses if r.status_code < 300)
    assert ledger.verify() == []


def test_the_workers_live_with_the_app(db_url):
    def workers():  # one per kind: events, redemptions, audit lines
        return [t for t in threading.enumerate() if t.name.startswith("jifen-group-commit-")]

    app = create_app(db_url)
    try:
        before = len(workers())
        with TestClient(app):
            assert len(workers()) == before + 3
        assert len(workers()) == before
        app.state.group_commit = GroupCommit(app.state.sessions, 0, 500)  # JIFEN_GROUP_COMMIT_MS=0: off
        app.state.redemption_commit = GroupCommit(app.state.sessions, 0, 500)
        app.state.audit_commit = GroupCommit(app.state.sessions, 0, 500)
        with TestClient(app):
            assert len(workers()) == before
    finally:
        app.state.engine.dispose()
