"""award_many writes what award would, item by item, and settle_many what settle_member would, member by
member: balances, lots, pending, debt, chain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from jifen.errors import InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.bulk import AwardItem, award_many, settle_many
from jifen.ledger.engine import lock_members
from jifen.ledger.models import Account, JournalEntry, Lot, LotMove, Posting
from jifen.outbox import OutboxMessage
from jifen.programs.service import add_wallet, get_program
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


def _history(ledger: Ledger, member_id: str, since: dt.datetime) -> list[tuple]:
    """The member's entries recorded from `since` as comparable values: accounts by kind (or system kind),
    lots by their place among the member's lots, outbox messages without the ids that differ."""
    pk = ledger.member(member_id).id
    with ledger.factory() as s:
        kind = {a.id: (a.kind, a.member_pk is None) for a in s.scalars(select(Account))}
        place = {lot_id: n for n, lot_id in enumerate(s.scalars(select(Lot.id).where(Lot.member_pk == pk)
                                                                 .order_by(Lot.id)))}
        out = []
        for e in s.scalars(select(JournalEntry).where(JournalEntry.member_pk == pk, JournalEntry.recorded_at >= since)
                           .order_by(JournalEntry.id)):
            postings = sorted((kind[p.account_id], p.amount, p.member_pk == pk) for p in s.scalars(
                select(Posting).where(Posting.entry_id == e.id)))
            moves = sorted((place[mv.lot_id], kind[mv.account_id], mv.amount) for mv in s.scalars(
                select(LotMove).where(LotMove.entry_id == e.id)))
            (message,) = s.scalars(select(OutboxMessage).where(OutboxMessage.payload["entry_id"].as_integer() == e.id))
            payload = {k: v for k, v in message.payload.items() if k not in ("entry_id", "member_pk")}
            out.append((e.type, e.points, e.wallet_id, e.actor, e.reason, e.reference, e.occurred_at, e.recorded_at,
                        e.seq is not None and e.hash is not None, postings, moves, message.topic, payload))
        return out


def test_settle_many_writes_what_settle_member_does(factory):
    """Every kind of due lot, members in refund debt (paid off whole by maturing points, or in part), two
    wallets: members settled together by the set path and their twins settled one by one end the same —
    entries, postings, lot moves, lot states, balances, outbox messages, the chain."""
    with factory() as s, s.begin():
        add_wallet(s, get_program(s, "default"), "brand", "品牌積分")
    early = Ledger(factory, now=NOW - 40 * DAY)
    groups = ("a", "b")
    cases = ("mix", "paid", "part", "none", "both")
    early.add_members(*[g + c for g in groups for c in cases])
    early.run(lambda sc, s: setattr(sc.program, "allow_debt", True))

    def history(sc, s, who, case):
        member = m(sc, who)
        if case in ("mix", "both"):
            ops.award(sc, member, 30, pending_until=NOW - 30 * DAY, expires_at=NOW + 9 * DAY)  # matures
            ops.award(sc, member, 20, expires_at=NOW - DAY)  # expires
            ops.award(sc, member, 7, pending_until=NOW - 35 * DAY, expires_at=NOW - 2 * DAY)  # both at once
            ops.award(sc, member, 5, pending_until=NOW + DAY)  # not yet
            ops.award(sc, member, 9, expires_at=NOW + 3 * DAY)  # not yet
        if case in ("paid", "part"):
            first = ops.award(sc, member, 50)
            ops.spend(sc, member, 50)
            ops.reverse(sc, first.id)  # 50 taken back after they were spent: debt 50
            ops.award(sc, member, 80 if case == "paid" else 20, pending_until=NOW - DAY)

    for g in groups:
        for c in cases:
            early.run(lambda sc, s, who=g + c, c=c: history(sc, s, who, c))
        early.run(lambda sc, s, who=g + "both": history(sc, s, who, "mix"), wallet="brand")
    later = Ledger(factory, now=NOW)

    def bulk(sc, s):
        pks = [m(sc, "a" + c).id for c in cases]
        lock_members(s, pks)
        return [e.type for e in settle_many(sc, pks)]

    def one_by_one(sc, s):
        pks = [m(sc, "b" + c).id for c in cases]
        lock_members(s, pks)
        return [e.type for pk in pks for e in ops.settle_member(sc, sc.wallet, pk)]

    for wallet in (None, "brand"):
        assert sorted(later.run(bulk, wallet=wallet, actor="job")) == sorted(later.run(one_by_one, wallet=wallet,
                                                                                       actor="job"))
    for c in cases:
        for wallet in (None, "brand"):
            assert later.balances("a" + c, wallet) == later.balances("b" + c, wallet)
        assert lots(later, "a" + c) == lots(later, "b" + c)
        assert _history(later, "a" + c, NOW) == _history(later, "b" + c, NOW)
    assert later.balances("apaid") | {} == {"available": 30, "pending": 0, "held": 0, "frozen": 0, "debt": 0}
    assert later.balances("apart")["debt"] == -30
    assert later.balances("amix") | {"available": 39, "pending": 5} == later.balances("amix")
    assert [h[:2] for h in _history(later, "amix", NOW)] == [("mature", 37), ("expire", 27)]
    assert later.verify() == []


def test_a_debtor_whose_maturing_points_pay_off_the_debt_gets_the_award_once(factory):
    """Found writing settle_many: the debtor's due lots, settled the ordinary way, were planned again once the
    debt was paid (a second maturing of the same points: refused as a negative pending balance)."""
    early = Ledger(factory, now=NOW - 40 * DAY)
    early.add_members("d")
    early.run(lambda sc, s: setattr(sc.program, "allow_debt", True))
    first = early.run(lambda sc, s: ops.award(sc, m(sc, "d"), 50).id)
    early.run(lambda sc, s: ops.spend(sc, m(sc, "d"), 50))
    early.run(lambda sc, s: ops.reverse(sc, first))
    early.run(lambda sc, s: ops.award(sc, m(sc, "d"), 80, pending_until=NOW - DAY))
    later = Ledger(factory, now=NOW)

    def bulk(sc, s):
        member = m(sc, "d")
        lock_members(s, [member.id])
        award_many(sc, [AwardItem(member, 10, NOW)])

    later.run(bulk)
    assert later.balances("d") | {} == {"available": 40, "pending": 0, "held": 0, "frozen": 0, "debt": 0}
    assert later.verify() == []


def test_bulk_awards_keep_a_given_expiry_as_award_does(factory):
    ledger = Ledger(factory)
    ledger.add_members("e1", "e2")
    earned, expires = NOW - 30 * DAY, NOW + 45 * DAY  # a lot migrated with its own expiry, not the policy's

    def bulk(sc, s):
        member = m(sc, "e1")
        lock_members(s, [member.id])
        award_many(sc, [AwardItem(member, 60, earned, reference="x", expires_at=expires)])
        try:
            award_many(sc, [AwardItem(member, 1, earned, expires_at=earned)])
        except InvalidRequest as refused:
            return refused.code

    assert ledger.run(bulk) == "invalid_expiry"
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "e2"), 60, occurred_at=earned, expires_at=expires, reference="x"))
    assert lots(ledger, "e1") == lots(ledger, "e2") == [(60, 60, 0, earned, expires, None)]
    assert ledger.verify() == []
