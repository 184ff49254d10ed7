"""PostgreSQL under contention: events racing for a member's daily cap and for a programme-wide
budget, and the same event_id sent by several threads at once. Caps and budgets are never exceeded,
no event is processed twice, and the ledger verifies."""

from __future__ import annotations

from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker
from jifen.errors import IdempotencyConflict
from jifen.events.models import Event
from jifen.ledger.models import JournalEntry
from jifen.programs.service import get_program
from tests.conftest import NOW, Ledger
from tests.support.intake import add_members, configure, event, send
from tests.support.racing import race

THREADS = 24


def test_member_cap_and_global_budget_hold_under_concurrency(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}, "rules": {"budgets": {"launch": 1000}, "rules": [
        {"code": "share", "events": ["share"], "award": {"fixed": 15}, "caps": {"day": 100}},
        {"code": "launch", "events": ["register"], "award": {"fixed": 30}, "budget": "launch"}]}})
    members = [f"m{i}" for i in range(THREADS)]
    add_members(factory, "hot", *members)
    # Every thread shares for the same member: 24 × 15 = 360 wanted, 100 allowed.
    assert race(lambda i: [send(factory, event("hot", "share", at=NOW)) for _ in range(2)], range(THREADS)) == []
    # Every thread registers another member: 24 × 30 = 720 wanted, and again for 1,440 against 1,000.
    assert race(lambda i: send(factory, event(members[i], "register", at=NOW),
                               event(members[(i + 1) % THREADS], "register", at=NOW)), range(THREADS)) == []
    with factory() as s:
        program = get_program(s, "default")
        by_type = dict(s.execute(select(Event.type, func.sum(Event.points)).where(
            Event.program_id == program.id).group_by(Event.type)).all())
    assert by_type == {"share": 100, "register": 1000}
    assert Ledger(factory).balances("hot")["available"] == 100
    assert Ledger(factory).verify() == []
    engine.dispose()


def test_the_same_event_sent_at_once_is_processed_once(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}})
    add_members(factory, "alice")
    same = event("alice", amount=120, order_id="SO1", event_id="till-7")
    results = []
    errors = race(lambda i: results.append(send(factory, same)[0]), range(THREADS))
    assert errors == []
    assert sorted(r["status"] for r in results) == ["processed"] + ["replayed"] * (THREADS - 1)
    assert {r["points"] for r in results} == {132}
    different = event("alice", amount=5, order_id="SO1", event_id="till-7")
    conflicts = race(lambda i: send(factory, different), range(4))
    assert len(conflicts) == 4 and all(isinstance(e, IdempotencyConflict) for e in conflicts)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 1
    assert Ledger(factory).balances("alice")["available"] == 132
    engine.dispose()
