"""award_many writes what award would, item by item: balances, lots, pending, debt, chain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from jifen.ledger import operations as ops
from jifen.ledger.bulk import AwardItem, award_many
from jifen.ledger.engine import lock_members
from jifen.ledger.models import JournalEntry, Lot
from tests.conftest import NOW, Ledger, m

DAY = dt.timedelta(days=1)


def lots(ledger: Ledger, member_id: str):
    with ledger.factory() as s:
        pk = ledger.member(member_id).id
        return [(lot.points, lot.available, lot.pending, lot.earned_at, lot.expires_at, lot.pending_until)
                for lot in s.scalars(select(Lot).where(Lot.member_pk == pk).order_by(Lot.id))]


def test_bulk_awards_equal_awards_one_by_one(factory):
    ledger = Ledger(factory)
    ledger.add_members("a1", "a2", "b1", "b2")
    plan = [(0, 100, NOW - 2 * DAY, None), (1, 5, NOW - DAY, NOW + 6 * DAY), (0, 7, NOW, None),
            (1, 40, NOW - 10 * DAY, NOW - 3 * DAY)]  # the last one's return window has already closed

    def bulk(sc, s):
        members = [m(sc, "a1"), m(sc, "a2")]
        lock_members(s, [x.id for x in members])
        return [e.id for e in award_many(sc, [AwardItem(members[i], p, at, pending, f"ref{n}", "r")
                                              for n, (i, p, at, pending) in enumerate(plan)])]

    ids = ledger.run(bulk)
    assert len(ids) == 4
    for n, (i, p, at, pending) in enumerate(plan):
        who = ["b1", "b2"][i]
        ledger.run(lambda sc, s, who=who, p=p, at=at, pending=pending, n=n: ops.award(
            sc, m(sc, who), p, occurred_at=at, pending_until=pending, reference=f"ref{n}", reason="r"))
    for a, b in (("a1", "b1"), ("a2", "b2")):
        assert ledger.balances(a) == ledger.balances(b)
        assert lots(ledger, a) == lots(ledger, b)
    assert ledger.balances("a2")["pending"] == 5 and ledger.balances("a2")["available"] == 40
    assert ledger.verify() == []


def test_members_in_debt_pay_it_first(factory):
    ledger = Ledger(factory)
    ledger.add_members("d", "ok")
    debt_program = ledger.run(lambda sc, s: setattr(sc.program, "allow_debt", True))
    assert debt_program is None
    award = ledger.run(lambda sc, s: ops.award(sc, m(sc, "d"), 50).id)
    ledger.run(lambda sc, s: ops.spend(sc, m(sc, "d"), 50))
    ledger.run(lambda sc, s: ops.reverse(sc, award))  # 50 taken back after they were spent: debt 50
    assert ledger.balances("d")["debt"] == -50

    def bulk(sc, s):
        members = [m(sc, "d"), m(sc, "ok")]
        lock_members(s, [x.id for x in members])
        award_many(sc, [AwardItem(members[0], 80, NOW), AwardItem(members[1], 80, NOW)])

    ledger.run(bulk)
    assert ledger.balances("d")["debt"] == 0 and ledger.balances("d")["available"] == 30
    assert ledger.balances("ok")["available"] == 80
    assert ledger.verify() == []


def test_settles_due_lots_first(factory):
    ledger = Ledger(factory, now=NOW - 40 * DAY)
    ledger.add_members("x")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "x"), 30, pending_until=NOW - 30 * DAY))
    later = Ledger(factory, now=NOW)
    later.run(lambda sc, s: award_many(sc, [AwardItem(m(sc, "x"), 10, NOW)]))
    assert later.balances("x")["available"] == 40 and later.balances("x")["pending"] == 0
    assert later.verify() == []


def test_settles_as_settle_member_does_maturing_and_expiring(factory):
    """Lots that mature, lots that expire, and a lot that does both, for several members in one batch:
    the same entries, balances and lot states as each member settled on its own (ops.award settles first)."""
    early = Ledger(factory, now=NOW - 40 * DAY)
    early.add_members("a", "b", "c", "d")
    early.run(lambda sc, s: setattr(sc.program, "expiry_months", None))
    for who in ("a", "b", "c", "d"):
        early.run(lambda sc, s, who=who: ops.award(sc, m(sc, who), 30, pending_until=NOW - 30 * DAY))
        early.run(lambda sc, s, who=who: ops.award(sc, m(sc, who), 20))
        early.run(lambda sc, s, who=who: ops.award(sc, m(sc, who), 5, pending_until=NOW + DAY))
    pks = [early.member(who).id for who in ("a", "b", "c", "d")]
    with factory() as s, s.begin():  # two lots overdue by now: one still pending until it matured, one not
        for pk in pks:
            for lot in s.scalars(select(Lot).where(Lot.member_pk == pk, Lot.points.in_([30, 20]))):
                lot.expires_at = NOW - DAY
    later = Ledger(factory, now=NOW)

    def bulk(sc, s):
        members = [m(sc, "a"), m(sc, "b")]
        lock_members(s, [x.id for x in members])
        award_many(sc, [AwardItem(members[0], 7, NOW), AwardItem(members[1], 9, NOW)])

    later.run(bulk)
    later.run(lambda sc, s: ops.award(sc, m(sc, "c"), 7))
    later.run(lambda sc, s: ops.award(sc, m(sc, "d"), 9))
    for a, b in (("a", "c"), ("b", "d")):
        assert later.balances(a) == later.balances(b)
        assert lots(later, a) == lots(later, b)
    assert later.balances("a") | {"available": 7, "pending": 5} == later.balances("a")
    a_pk = later.member("a").id
    with factory() as s:
        kinds = s.execute(select(JournalEntry.type, JournalEntry.points).where(
            JournalEntry.member_pk == a_pk, JournalEntry.recorded_at == NOW).order_by(JournalEntry.id)).all()
    assert [tuple(k) for k in kinds] == [("mature", 30), ("expire", 50), ("award", 7)]
    assert later.verify() == []
