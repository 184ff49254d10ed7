"""Ledger operations on SQLite and PostgreSQL: balances, lots, holds, reversals, debt, expiry."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from jifen.errors import Conflict, InsufficientPoints, InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.jobs import release_stale_holds, settle_due
from jifen.ledger.models import Lot, LotMove
from jifen.programs.service import add_wallet, get_program
from tests.conftest import NOW, Ledger, m

DAY = dt.timedelta(days=1)


def award(ledger, member_id, points, **kw):
    return ledger.run(lambda sc, s: ops.award(sc, m(sc, member_id), points, **kw))


def spend(ledger, member_id, points, **kw):
    return ledger.run(lambda sc, s: ops.spend(sc, m(sc, member_id), points, **kw))


def lots_of(ledger, member_id):
    m = ledger.member(member_id)
    with ledger.factory() as s:
        return {lot.points: lot for lot in s.scalars(select(Lot).where(Lot.member_pk == m.id).order_by(Lot.id))}


def test_award_and_spend_drain_earliest_expiring_lots_first(ledger):
    ledger.add_members("A")
    late = award(ledger, "A", 100, expires_at=NOW + 300 * DAY)
    early = award(ledger, "A", 50, expires_at=NOW + 30 * DAY)
    never_expiring = award(ledger, "A", 70, expires_at=None)  # default policy: 24 months
    entry = spend(ledger, "A", 120, reference="ORDER-1")
    with ledger.factory() as s:
        paid = {mv.lot_id: -mv.amount for mv in s.scalars(select(LotMove).where(LotMove.entry_id == entry.id))}
        lots = {lot.source_entry_id: lot for lot in s.scalars(select(Lot))}
    assert paid == {lots[early.id].id: 50, lots[late.id].id: 70}
    assert lots[never_expiring.id].available == 70
    assert ledger.balances("A")["available"] == 100
    assert ledger.verify() == []


def test_default_expiry_is_24_months_rolling(ledger):
    ledger.add_members("A")
    award(ledger, "A", 10, occurred_at=dt.datetime(2026, 2, 28, 3, tzinfo=dt.UTC))
    (lot,) = lots_of(ledger, "A").values()
    assert lot.expires_at == dt.datetime(2028, 2, 28, 3, tzinfo=dt.UTC)


def test_spend_more_than_available_changes_nothing(ledger):
    ledger.add_members("A")
    award(ledger, "A", 30)
    with pytest.raises(InsufficientPoints):
        spend(ledger, "A", 31)
    assert ledger.balances("A")["available"] == 30
    assert ledger.verify() == []


@pytest.mark.parametrize("bad", [0, -5, 1.5, "10", True, 10**12 + 1])
def test_bad_amounts_are_refused(ledger, bad):
    ledger.add_members("A")
    with pytest.raises(InvalidRequest):
        award(ledger, "A", bad)
    assert ledger.balances("A")["available"] == 0


def test_pending_points_mature_at_their_date(ledger):
    ledger.add_members("A")
    award(ledger, "A", 80, pending_until=NOW + 7 * DAY)
    assert ledger.balances("A")["pending"] == 80
    with pytest.raises(InsufficientPoints):
        spend(ledger, "A", 1)
    report = settle_due(ledger.factory, NOW + 7 * DAY)
    assert report.entries == 1
    assert ledger.balances("A") | {} == {"available": 80, "pending": 0, "held": 0, "frozen": 0, "debt": 0}
    assert ledger.verify() == []


def test_operations_settle_the_member_first(ledger):
    """A spend after the expiry date cannot use expired points, even before the job has run."""
    ledger.add_members("A")
    award(ledger, "A", 40, expires_at=NOW + DAY)
    award(ledger, "A", 10, expires_at=NOW + 100 * DAY)
    later = Ledger(ledger.factory, now=NOW + 2 * DAY)
    with pytest.raises(InsufficientPoints):
        spend(later, "A", 20)
    # the failed spend rolled back, expiry included; a good spend commits both
    assert ledger.balances("A")["available"] == 50
    spend(later, "A", 10)
    assert ledger.balances("A")["available"] == 0
    assert later.verify() == []


def test_hold_capture_and_release(ledger):
    ledger.add_members("A")
    award(ledger, "A", 100)
    h1 = ledger.run(lambda sc, s: ops.hold(sc, m(sc, "A"), 60, reference="R-1"))
    assert ledger.balances("A") | {} == {"available": 40, "pending": 0, "held": 60, "frozen": 0, "debt": 0}
    with pytest.raises(InsufficientPoints):
        ledger.run(lambda sc, s: ops.hold(sc, m(sc, "A"), 41))
    ledger.run(lambda sc, s: ops.capture(sc, h1.id))
    with pytest.raises(Conflict):
        ledger.run(lambda sc, s: ops.release(sc, h1.id))
    h2 = ledger.run(lambda sc, s: ops.hold(sc, m(sc, "A"), 40))
    ledger.run(lambda sc, s: ops.release(sc, h2.id))
    with pytest.raises(Conflict):
        ledger.run(lambda sc, s: ops.capture(sc, h2.id))
    assert ledger.balances("A") | {} == {"available": 40, "pending": 0, "held": 0, "frozen": 0, "debt": 0}
    assert ledger.verify() == []


def test_stale_holds_are_released_by_the_job(ledger):
    ledger.add_members("A")
    award(ledger, "A", 100)
    ledger.run(lambda sc, s: ops.hold(sc, m(sc, "A"), 70, expires_at=NOW + DAY))
    assert release_stale_holds(ledger.factory, NOW).holds_released == 0
    assert release_stale_holds(ledger.factory, NOW + DAY).holds_released == 1
    assert release_stale_holds(ledger.factory, NOW + DAY).holds_released == 0
    assert ledger.balances("A")["available"] == 100
    assert ledger.verify() == []


def test_partial_reversal_of_a_spend_restores_the_same_lots_proportionally(ledger):
    ledger.add_members("A")
    first = award(ledger, "A", 30, expires_at=NOW + 10 * DAY)
    second = award(ledger, "A", 90, expires_at=NOW + 20 * DAY)
    sp = spend(ledger, "A", 120)
    ledger.run(lambda sc, s: ops.reverse(sc, sp.id, 40, reason="partial refund"))
    with ledger.factory() as s:
        by_entry = {lot.source_entry_id: lot.available for lot in s.scalars(select(Lot))}
    assert by_entry == {first.id: 10, second.id: 30}  # 40 split 1:3 like the 30:90 paid
    ledger.run(lambda sc, s: ops.reverse(sc, sp.id))  # the rest
    with ledger.factory() as s:
        by_entry = {lot.source_entry_id: lot.available for lot in s.scalars(select(Lot))}
    assert by_entry == {first.id: 30, second.id: 90}
    with pytest.raises(Conflict, match="already fully reversed"):
        ledger.run(lambda sc, s: ops.reverse(sc, sp.id, 1))
    assert ledger.verify() == []


def test_reversal_cannot_exceed_what_is_left(ledger):
    ledger.add_members("A")
    e = award(ledger, "A", 100)
    ledger.run(lambda sc, s: ops.reverse(sc, e.id, 60))
    with pytest.raises(Conflict, match="only 40"):
        ledger.run(lambda sc, s: ops.reverse(sc, e.id, 41))
    ledger.run(lambda sc, s: ops.reverse(sc, e.id, 40))
    assert ledger.balances("A")["available"] == 0
    assert ledger.verify() == []


def allow_debt(ledger):
    with ledger.factory() as s, s.begin():
        get_program(s, "default").allow_debt = True


def test_refund_claw_back_without_debt_is_refused(ledger):
    ledger.add_members("A")
    e = award(ledger, "A", 100)
    spend(ledger, "A", 80)
    with pytest.raises(InsufficientPoints):
        ledger.run(lambda sc, s: ops.reverse(sc, e.id))
    assert ledger.balances("A")["available"] == 20
    assert ledger.verify() == []


def test_refund_debt_is_paid_off_by_later_awards_first(ledger):
    allow_debt(ledger)
    ledger.add_members("A")
    e = award(ledger, "A", 100)
    spend(ledger, "A", 80)
    ledger.run(lambda sc, s: ops.reverse(sc, e.id, reason="order refunded"))
    assert ledger.balances("A") | {} == {"available": 0, "pending": 0, "held": 0, "frozen": 0, "debt": -80}
    with pytest.raises(InsufficientPoints):
        spend(ledger, "A", 1)
    award(ledger, "A", 50)
    assert ledger.balances("A")["debt"] == -30 and ledger.balances("A")["available"] == 0
    award(ledger, "A", 50)
    assert ledger.balances("A")["debt"] == 0 and ledger.balances("A")["available"] == 20
    assert ledger.verify() == []


def test_transfer_keeps_expiry_and_reverses(ledger):
    ledger.add_members("A", "B")
    award(ledger, "A", 100, expires_at=NOW + 40 * DAY)
    t = ledger.run(lambda sc, s: ops.transfer(sc, m(sc, "A"), m(sc, "B"), 30))
    (gift,) = lots_of(ledger, "B").values()
    assert gift.expires_at == NOW + 40 * DAY and gift.available == 30
    with pytest.raises(InvalidRequest):
        ledger.run(lambda sc, s: ops.transfer(sc, m(sc, "A"), m(sc, "A"), 1))
    ledger.run(lambda sc, s: ops.reverse(sc, t.id, 10))
    assert ledger.balances("A")["available"] == 80 and ledger.balances("B")["available"] == 20
    spend(ledger, "B", 20)
    with pytest.raises(InsufficientPoints):  # a transfer reversal never puts the receiver in debt
        ledger.run(lambda sc, s: ops.reverse(sc, t.id))
    assert ledger.verify() == []


def test_adjustment_needs_reason_and_actor(ledger):
    ledger.add_members("A")
    with pytest.raises(InvalidRequest, match="reason"):
        ledger.run(lambda sc, s: ops.adjust(sc, m(sc, "A"), 10, reason=" "))
    with pytest.raises(InvalidRequest, match="actor"):
        ledger.run(lambda sc, s: ops.adjust(sc, m(sc, "A"), 10, reason="goodwill"), actor=None)
    up = ledger.run(lambda sc, s: ops.adjust(sc, m(sc, "A"), 25, reason="goodwill"))
    down = ledger.run(lambda sc, s: ops.adjust(sc, m(sc, "A"), -5, reason="typo"))
    assert (up.actor, up.reason, down.points) == ("tester", "goodwill", 5)
    assert ledger.balances("A")["available"] == 20
    assert ledger.verify() == []


def test_freeze_and_unfreeze(ledger):
    ledger.add_members("A")
    award(ledger, "A", 100)
    ledger.run(lambda sc, s: ops.freeze(sc, m(sc, "A"), reason="risk review"))
    assert ledger.balances("A")["frozen"] == 100
    with pytest.raises(InsufficientPoints):
        spend(ledger, "A", 1)
    ledger.run(lambda sc, s: ops.unfreeze(sc, m(sc, "A"), 60))
    assert ledger.balances("A")["frozen"] == 40 and ledger.balances("A")["available"] == 60
    assert ledger.verify() == []


def test_irreversible_entries(ledger):
    ledger.add_members("A")
    award(ledger, "A", 100)
    fr = ledger.run(lambda sc, s: ops.freeze(sc, m(sc, "A"), 10))
    with pytest.raises(Conflict, match="cannot be reversed"):
        ledger.run(lambda sc, s: ops.reverse(sc, fr.id))


def test_expiry_job_is_resumable_and_safe_to_rerun(ledger):
    ids = [f"M{i}" for i in range(25)]
    ledger.add_members(*ids)
    for i, mid in enumerate(ids):
        award(ledger, mid, 10 + i, expires_at=NOW + DAY)
        award(ledger, mid, 5, expires_at=NOW + 90 * DAY)
    first = settle_due(ledger.factory, NOW + 2 * DAY, batch=7)
    assert (first.entries, first.batches) == (25, 4)
    again = settle_due(ledger.factory, NOW + 2 * DAY, batch=7)
    assert again.entries == 0
    assert all(ledger.balances(mid)["available"] == 5 for mid in ids)
    assert ledger.verify() == []


def test_wallets_are_separate_currencies(ledger):
    with ledger.factory() as s, s.begin():
        add_wallet(s, get_program(s, "default"), "brand", "品牌積分")
    ledger.add_members("A")
    award(ledger, "A", 100)
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "A"), 50), wallet="brand")
    with pytest.raises(InsufficientPoints):
        ledger.run(lambda sc, s: ops.spend(sc, m(sc, "A"), 51), wallet="brand")
    assert ledger.balances("A")["available"] == 100
    assert ledger.balances("A", wallet="brand")["available"] == 50
    assert ledger.verify() == []


def test_a_failed_operation_inside_a_larger_transaction_leaves_no_trace(ledger):
    ledger.add_members("A", "B")
    award(ledger, "A", 10)

    def tx(sc, s):
        a, b = m(sc, "A"), m(sc, "B")
        with pytest.raises(InsufficientPoints):
            ops.transfer(sc, a, b, 11)
        return ops.spend(sc, a, 4)

    ledger.run(tx)
    assert ledger.balances("A")["available"] == 6
    assert ledger.verify() == []


def test_apportion_never_gives_more_than_a_weight():
    assert ops.apportion(40, [30, 90]) == [10, 30]
    assert ops.apportion(1, [1, 1, 1]) == [1, 0, 0]
    assert sum(ops.apportion(7, [3, 3, 5])) == 7
    for total in range(0, 12):
        shares = ops.apportion(total, [2, 4, 5])
        assert sum(shares) == total and all(s <= w for s, w in zip(shares, [2, 4, 5]))


def test_reversing_an_award_that_paid_off_debt_restores_the_debt(ledger):
    """Found by the property test: the award's own debt payoff is not a payment to be refunded."""
    allow_debt(ledger)
    ledger.add_members("A")
    first = award(ledger, "A", 100)
    spend(ledger, "A", 100)
    ledger.run(lambda sc, s: ops.reverse(sc, first.id))  # debt 100
    second = award(ledger, "A", 130)  # pays the debt, 30 left
    assert ledger.balances("A")["debt"] == 0 and ledger.balances("A")["available"] == 30
    ledger.run(lambda sc, s: ops.reverse(sc, second.id, 50))
    assert ledger.balances("A")["available"] == 0 and ledger.balances("A")["debt"] == -20
    assert ledger.verify() == []


def test_entries_of_a_rolled_back_operation_never_enter_the_chain(ledger):
    """A reversal that fails after settling the member (an expiry entry written, then rolled back with
    its savepoint) must leave no trace, even when the next entry reuses the row id (SQLite)."""
    ledger.add_members("A")
    award(ledger, "A", 10, expires_at=NOW + DAY)
    e = award(ledger, "A", 100)
    ledger.run(lambda sc, s: ops.reverse(sc, e.id))
    later = Ledger(ledger.factory, now=NOW + 2 * DAY)

    def tx(sc, s):
        with pytest.raises(Conflict, match="already fully reversed"):
            ops.reverse(sc, e.id)
        return ops.award(sc, m(sc, "A"), 7)

    later.run(tx)
    assert ledger.balances("A")["available"] == 7
    assert ledger.verify() == []


def test_expiry_job_settles_every_wallet_of_a_member(ledger):
    with ledger.factory() as s, s.begin():
        add_wallet(s, get_program(s, "default"), "brand", "品牌積分")
    ledger.add_members("A", "B")
    for mid in ("A", "B"):
        award(ledger, mid, 10, expires_at=NOW + DAY)
        ledger.run(lambda sc, s, mid=mid: ops.award(sc, m(sc, mid), 20, expires_at=NOW + DAY), wallet="brand")
    report = settle_due(ledger.factory, NOW + 2 * DAY, batch=1)
    assert report.entries == 4
    for mid in ("A", "B"):
        assert ledger.balances(mid)["available"] == 0 and ledger.balances(mid, wallet="brand")["available"] == 0
    assert ledger.verify() == []
