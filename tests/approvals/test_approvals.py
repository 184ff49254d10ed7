"""Maker-checker in the service, on both databases: the threshold decides what waits; the maker cannot
decide their own request; checkers racing to approve post the adjustment exactly once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from jifen.approvals import service as approvals
from jifen.errors import Conflict, Forbidden
from jifen.ledger.models import JournalEntry
from jifen.programs.models import Program
from jifen.security.service import Principal
from tests.conftest import Ledger, m

MAKER = Principal(0, "maker", "operator", 1, user_id=10)
CHECKERS = [Principal(0, f"checker{n}", "finance", 1, user_id=20 + n) for n in range(4)]


def adjustments(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(JournalEntry).where(JournalEntry.type == "adjust"))


def test_threshold_decides_what_waits(factory):
    with factory() as s:
        program = s.scalars(select(Program)).first()
        assert not approvals.needs_approval(program, 10**9)  # no threshold: nothing waits
        program.risk = {"adjust_approval_above": 500}
        assert [approvals.needs_approval(program, p) for p in (500, 501, -500, -501)] == [False, True, False, True]


def test_the_maker_cannot_decide_and_racing_checkers_post_once(factory):
    ledger = Ledger(factory)
    ledger.add_members("M1")
    req = ledger.run(lambda sc, s: approvals.request_adjustment(sc, m(sc, "M1"), 900, "lost order", MAKER).id)
    for decide in (approvals.approve, approvals.reject):
        with pytest.raises(Forbidden, match="another person"):
            ledger.run(lambda sc, s, decide=decide: decide(sc, approvals.get_request(sc, req), MAKER))
    same_user = Principal(0, "maker-renamed", "admin", 1, user_id=MAKER.user_id)
    with pytest.raises(Forbidden):
        ledger.run(lambda sc, s: approvals.approve(sc, approvals.get_request(sc, req), same_user))
    assert adjustments(factory) == 0

    outcomes: list[str] = []
    start = threading.Barrier(len(CHECKERS))

    def approve(checker):
        start.wait()
        try:
            ledger.run(lambda sc, s: approvals.approve(sc, approvals.get_request(sc, req), checker))
            outcomes.append("approved")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=approve, args=(c,)) for c in CHECKERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approved"] + ["conflict"] * (len(CHECKERS) - 1)
    assert adjustments(factory) == 1 and ledger.balances("M1")["available"] == 900
    assert ledger.verify() == []
