"""Reversals: an entry undone in full or in part, proportionally — the very lots it moved restored (or
clawed back), never more than what is left to reverse. Part of `jifen.ledger.operations`, which re-exports it."""

from __future__ import annotations

from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.db import total
from jifen.errors import Conflict, InsufficientPoints, NotFound
from jifen.ledger.engine import AccountRef, EntryBuilder
from jifen.ledger.models import (
    AVAILABLE,
    DEBT,
    FROZEN,
    PENDING,
    Account,
    JournalEntry,
    Lot,
    LotMove,
    Posting,
)
from jifen.ledger.scope import REVERSIBLE, Scope, atomic, check_points, open_members
from jifen.members.models import Member
from jifen.programs.models import Wallet


def get_entry(sc: Scope, entry_id: int) -> JournalEntry:
    entry = sc.session.get(JournalEntry, entry_id)
    if entry is None or entry.program_id != sc.program.id:
        raise NotFound(f"unknown entry {entry_id}", code="unknown_entry")
    return entry


def apportion(total: int, weights: list[int]) -> list[int]:
    """Split `total` in proportion to `weights` (largest remainder); no share exceeds its weight."""
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    rest = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in by_remainder[:rest]:
        shares[i] += 1
    return shares


def _reversed(session: Session, entry_id: int) -> int:
    # An aggregate without GROUP BY is one row, and total() is never NULL; SQLAlchemy types scalar() as optional.
    return cast(int, session.scalar(select(total(JournalEntry.points)).where(JournalEntry.reverses_entry_id == entry_id)))


def reversible(sc: Scope, entry_id: int) -> int:
    """Points of an entry not yet reversed."""
    return get_entry(sc, entry_id).points - _reversed(sc.session, entry_id)


@atomic
def reverse(sc: Scope, entry_id: int, points: int | None = None, *, reason: str | None = None) -> JournalEntry:
    """Undo an entry in full or in part: points a member received are clawed back (from the same
    lots first), points a member paid return to the lots they came from, proportionally."""
    s = sc.session
    original = get_entry(sc, entry_id)
    if original.type not in REVERSIBLE:
        raise Conflict(f"a {original.type} entry cannot be reversed", code="not_reversible")
    members = [s.get_one(Member, pk) for pk in (original.member_pk, original.counterparty_pk) if pk]
    wallet = s.get_one(Wallet, original.wallet_id)
    opened: dict[int | None, dict[str, AccountRef]] = dict(zip([m.id for m in members], open_members(sc, wallet, *members)))
    remaining = original.points - _reversed(s, original.id)
    n = remaining if points is None else check_points(points)
    if remaining == 0:
        raise Conflict(f"entry {entry_id} is already fully reversed", code="already_reversed")
    if n > remaining:
        raise Conflict(f"only {remaining} points of entry {entry_id} remain reversible", code="exceeds_reversible")

    b = sc.builder("reverse", n, wallet, member_pk=original.member_pk, counterparty_pk=original.counterparty_pk,
                   reverses_entry_id=original.id, reference=original.reference, reason=reason)
    # The programme side, scaled: an award's issuance comes back, a spend's redemption is returned.
    for account_id, amount in s.execute(select(Posting.account_id, Posting.amount).where(
            Posting.entry_id == original.id, Posting.member_pk.is_(None))):
        b.post(AccountRef(account_id, "system", None), n if amount < 0 else -n)
    # Points the original put into new lots (award, positive adjustment, the receiver of a transfer).
    created = list(s.scalars(select(Lot).where(Lot.source_entry_id == original.id).order_by(Lot.id)))
    if created:
        owner = created[0].member_pk
        debt_ok = sc.program.allow_debt and original.type in ("award", "adjust")
        _claw_back(b, opened[owner], created, n, debt_ok)
    # Points the original took out of lots (spend, capture, negative adjustment, the giver of a transfer).
    # (Not the lots it created: an award that paid off debt moved points out of its own new lot.)
    paid = s.execute(
        select(LotMove.lot_id, total(LotMove.amount))
        .join(Lot, Lot.id == LotMove.lot_id)
        .where(LotMove.entry_id == original.id, LotMove.amount < 0, Lot.source_entry_id.is_distinct_from(original.id))
        .group_by(LotMove.lot_id).order_by(LotMove.lot_id)
    ).all()
    if paid:
        _restore(b, opened[original.member_pk], original.id, [(lot_id, -amt) for lot_id, amt in paid], n)
    return b.finish()


def _claw_back(b: EntryBuilder, accounts: dict[str, AccountRef], lots: list[Lot], n: int, debt_ok: bool) -> None:
    for kind in (PENDING, AVAILABLE, FROZEN):
        for lot in lots:
            part = min(n, getattr(lot, kind))
            if part:
                b.move(lot, accounts[kind], -part)
                n -= part
    if n:
        part = min(n, b.balance(accounts[AVAILABLE]))
        if part:
            b.take(accounts[AVAILABLE], part)
            n -= part
    if n:
        if not debt_ok:
            raise InsufficientPoints(f"member has {n} points too few to reverse; programme allows no debt")
        b.post(accounts[DEBT], -n)


def _restore(b: EntryBuilder, accounts: dict[str, AccountRef], original_id: int, paid: list[tuple[int, int]],
             n: int) -> None:
    s = b.session
    restored = dict(s.execute(
        select(LotMove.lot_id, total(LotMove.amount))
        .join(JournalEntry, JournalEntry.id == LotMove.entry_id)
        .join(Account, Account.id == LotMove.account_id)
        .where(JournalEntry.reverses_entry_id == original_id, LotMove.amount > 0,
               Account.member_pk == accounts[AVAILABLE].member_pk)
        .group_by(LotMove.lot_id)
    ).all())
    open_ = [(lot_id, amount - restored.get(lot_id, 0)) for lot_id, amount in paid]
    for (lot_id, _), share in zip(open_, apportion(n, [w for _, w in open_])):
        if share:
            b.credit_available(accounts, s.get_one(Lot, lot_id), share)
