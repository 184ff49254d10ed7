"""Ledger operations. Each runs inside the caller's transaction and writes through EntryBuilder.

Before touching a member, an operation settles the member: pending lots whose time has come become
available and lots past expiry expire, so every operation sees exact balances.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.db import total
from jifen.errors import Conflict, InsufficientPoints, InvalidRequest, NotFound
from jifen.ledger.chain import GENESIS
from jifen.ledger.engine import AccountRef, EntryBuilder, lock_members, member_accounts, system_account
from jifen.ledger.models import (
    ADJUSTMENT,
    AVAILABLE,
    DEBT,
    EXPIRY,
    FROZEN,
    HELD,
    ISSUANCE,
    MEMBER_KINDS,
    PENDING,
    REDEMPTION,
    SYSTEM_KINDS,
    Account,
    ChainHead,
    Hold,
    JournalEntry,
    Lot,
    LotMove,
    Posting,
)
from jifen.members.models import Member
from jifen.programs.expiry import expiry_for
from jifen.programs.models import Program, Wallet

P = ParamSpec("P")
R = TypeVar("R")


def atomic(fn: Callable[Concatenate[Scope, P], R]) -> Callable[Concatenate[Scope, P], R]:
    """An operation either happens whole or not at all, even inside a caller's larger transaction
    that catches its error and goes on (a savepoint around it)."""

    @functools.wraps(fn)
    def wrapper(sc: Scope, *args: P.args, **kwargs: P.kwargs) -> R:
        with sc.session.begin_nested():
            return fn(sc, *args, **kwargs)

    # mypy cannot match functools.wraps' _Wrapped (first parameter named `sc`) to Concatenate[Scope, P].
    return wrapper  # type: ignore[return-value]


MAX_POINTS = 10**12  # a single operation above a trillion points is a bug, not a purchase
REVERSIBLE = {"award", "adjust", "spend", "capture", "transfer"}


@dataclass
class Scope:
    """Where and when an operation happens, and who asked for it."""

    session: Session
    program: Program
    wallet: Wallet
    now: dt.datetime
    actor: str | None = None

    def builder(self, type: str, points: int, wallet: Wallet | None = None, **kw: Any) -> EntryBuilder:
        return EntryBuilder(
            self.session, self.program, wallet or self.wallet, type, points=points, now=self.now, actor=self.actor, **kw
        )


def check_points(points: object, *, allow_negative: bool = False) -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidRequest("points must be a whole number", code="invalid_points")
    if points == 0 or (points < 0 and not allow_negative):
        raise InvalidRequest("points must be positive" if not allow_negative else "points must not be zero",
                             code="invalid_points")
    if abs(points) > MAX_POINTS:
        raise InvalidRequest(f"points must be at most {MAX_POINTS}", code="invalid_points")
    return points


def open_chain(session: Session, program: Program) -> None:
    """A new programme's hash chain: nothing sealed yet."""
    session.add(ChainHead(program_id=program.id, seq=0, hash=GENESIS))


def open_accounts(session: Session, wallet_ids: Collection[int], member_pks: Collection[int] = (), *,
                  system: bool = False) -> None:
    """Zero accounts in these wallets: every state of each member, and with `system` the programme's own
    (issuance, redemption, expiry, adjustment) for a new wallet."""
    session.add_all([Account(wallet_id=w, member_pk=None, kind=k, balance=0) for w in wallet_ids for k in SYSTEM_KINDS]
                    if system else [])
    session.add_all(Account(wallet_id=w, member_pk=pk, kind=k, balance=0)
                    for w in wallet_ids for pk in member_pks for k in MEMBER_KINDS)
    session.flush()


def available(session: Session, member: Member, wallet: Wallet) -> int:
    """The member's spendable points in the wallet, as stored (not settled: a quick look, not a promise)."""
    return member_accounts(session, member.id, wallet.id)[AVAILABLE].balance


def open_members(sc: Scope, wallet: Wallet, *members: Member) -> list[dict[str, AccountRef]]:
    """Lock the members, settle them, and return each one's accounts in the wallet."""
    lock_members(sc.session, [m.id for m in members])
    for m in members:
        settle_member(sc, wallet, m.id)
    return [member_accounts(sc.session, m.id, wallet.id) for m in members]


_DUE = (select(Lot).where(
    Lot.member_pk == bindparam("member"), Lot.wallet_id == bindparam("wallet"),
    ((Lot.pending > 0) & (Lot.pending_until <= bindparam("now")))
    | ((Lot.available > 0) & (Lot.expires_at <= bindparam("now"))),
).order_by(Lot.expires_at, Lot.id))


def settle_member(sc: Scope, wallet: Wallet, member_pk: int) -> list[JournalEntry]:
    """Mature due pending lots, then expire overdue ones. Caller holds the member lock."""
    lots = list(sc.session.scalars(_DUE, {"member": member_pk, "wallet": wallet.id, "now": sc.now}))
    if not lots:
        return []
    done = []
    accounts = member_accounts(sc.session, member_pk, wallet.id)
    due = [lot for lot in lots if lot.pending > 0 and lot.pending_until is not None and lot.pending_until <= sc.now]
    if due:
        b = sc.builder("mature", sum(lot.pending for lot in due), wallet, member_pk=member_pk)
        for lot in due:
            amount = lot.pending
            b.move(lot, accounts[PENDING], -amount)
            b.credit_available(accounts, lot, amount)
        done.append(b.finish())
    overdue = [lot for lot in lots if lot.available > 0 and lot.expires_at is not None and lot.expires_at <= sc.now]
    if overdue:
        b = sc.builder("expire", sum(lot.available for lot in overdue), wallet, member_pk=member_pk)
        for lot in overdue:
            b.move(lot, accounts[AVAILABLE], -lot.available)
        b.post(system_account(sc.session, wallet.id, EXPIRY), b.entry.points)
        done.append(b.finish())
    return done


@atomic
def award(
    sc: Scope,
    member: Member,
    points: int,
    *,
    occurred_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    pending_until: dt.datetime | None = None,
    reference: str | None = None,
    reason: str | None = None,
    type: str = "award",
    source: str = ISSUANCE,
) -> JournalEntry:
    check_points(points)
    earned = occurred_at or sc.now
    expires = expires_at or expiry_for(sc.program, earned)
    if expires is not None and expires <= earned:
        raise InvalidRequest("expires_at must be after occurred_at", code="invalid_expiry")
    if pending_until is not None and expires is not None and pending_until >= expires:
        raise InvalidRequest("pending_until must be before expires_at", code="invalid_pending")
    (accounts,) = open_members(sc, sc.wallet, member)
    b = sc.builder(type, points, member_pk=member.id, occurred_at=earned, reference=reference, reason=reason)
    b.post(system_account(sc.session, sc.wallet.id, source), -points)
    pending = pending_until if pending_until is not None and pending_until > sc.now else None
    lot = b.new_lot(member.id, points, earned_at=earned, expires_at=expires, pending_until=pending)
    if pending:
        b.move(lot, accounts[PENDING], points)
    else:
        b.credit_available(accounts, lot, points)
    return b.finish()


@atomic
def spend(
    sc: Scope,
    member: Member,
    points: int,
    *,
    occurred_at: dt.datetime | None = None,
    reference: str | None = None,
    reason: str | None = None,
    type: str = "spend",
    sink: str = REDEMPTION,
) -> JournalEntry:
    check_points(points)
    (accounts,) = open_members(sc, sc.wallet, member)
    b = sc.builder(type, points, member_pk=member.id, occurred_at=occurred_at, reference=reference, reason=reason)
    b.take(accounts[AVAILABLE], points)
    b.post(system_account(sc.session, sc.wallet.id, sink), points)
    return b.finish()


@atomic
def adjust(sc: Scope, member: Member, points: int, *, reason: str, reference: str | None = None) -> JournalEntry:
    """A manual correction by an operator: reason and actor are mandatory."""
    check_points(points, allow_negative=True)
    if not (reason or "").strip():
        raise InvalidRequest("an adjustment needs a reason", code="reason_required")
    if not sc.actor:
        raise InvalidRequest("an adjustment needs an actor", code="actor_required")
    if points > 0:
        return award(sc, member, points, reason=reason, reference=reference, type="adjust", source=ADJUSTMENT)
    return spend(sc, member, -points, reason=reason, reference=reference, type="adjust", sink=ADJUSTMENT)


@atomic
def transfer(
    sc: Scope, giver: Member, receiver: Member, points: int, *, reference: str | None = None,
    reason: str | None = None,
) -> JournalEntry:
    """Gift points: the receiver gets new lots that keep the giver's expiry dates."""
    check_points(points)
    if giver.id == receiver.id:
        raise InvalidRequest("cannot transfer points to the same member", code="same_member")
    acc_giver, acc_receiver = open_members(sc, sc.wallet, giver, receiver)
    b = sc.builder("transfer", points, member_pk=giver.id, counterparty_pk=receiver.id, reference=reference,
                   reason=reason)
    for lot, part in b.take(acc_giver[AVAILABLE], points):
        new = b.new_lot(receiver.id, part, earned_at=lot.earned_at, expires_at=lot.expires_at, origin=lot.id)
        b.credit_available(acc_receiver, new, part)
    return b.finish()


def _set_aside(sc: Scope, member: Member, points: int | None, source: str, target: str, type: str,
               reason: str | None) -> JournalEntry:
    """Move points between two of a member's states, lot by lot (freeze, unfreeze)."""
    (accounts,) = open_members(sc, sc.wallet, member)
    amount = accounts[source].balance if points is None else check_points(points)
    if amount == 0:
        raise Conflict(f"member has no {source} points", code="nothing_to_move")
    b = sc.builder(type, amount, member_pk=member.id, reason=reason)
    for lot, part in b.take(accounts[source], amount):
        b.move(lot, accounts[target], part)
    return b.finish()


@atomic
def freeze(sc: Scope, member: Member, points: int | None = None, *, reason: str | None = None) -> JournalEntry:
    return _set_aside(sc, member, points, AVAILABLE, FROZEN, "freeze", reason)


@atomic
def unfreeze(sc: Scope, member: Member, points: int | None = None, *, reason: str | None = None) -> JournalEntry:
    return _set_aside(sc, member, points, FROZEN, AVAILABLE, "unfreeze", reason)


def _lots_aside(sc: Scope, member: Member, parts: dict[int, int], source: str, target: str, type: str,
                reason: str | None, reference: str | None) -> tuple[JournalEntry | None, dict[int, int]]:
    """Move up to `parts[lot]` points of each of these lots of the member from one state to another."""
    (accounts,) = open_members(sc, sc.wallet, member)
    lots = list(sc.session.scalars(select(Lot).where(Lot.id.in_(sorted(parts)), Lot.member_pk == member.id,
                                                      Lot.wallet_id == sc.wallet.id).order_by(Lot.id)))
    moved = {lot.id: min(parts[lot.id], getattr(lot, source)) for lot in lots}
    moved = {k: v for k, v in moved.items() if v > 0}
    if not moved:
        return None, {}
    b = sc.builder(type, sum(moved.values()), member_pk=member.id, reason=reason, reference=reference)
    for lot in lots:
        if lot.id in moved:
            b.move(lot, accounts[source], -moved[lot.id])
            b.move(lot, accounts[target], moved[lot.id])
    return b.finish(), moved


@atomic
def freeze_lots(sc: Scope, member: Member, lot_ids: Iterable[int], *, reason: str | None = None,
                reference: str | None = None) -> tuple[JournalEntry | None, dict[int, int]]:
    """Freeze what is available of these lots (risk review holds exactly the points under review);
    (entry or None, {lot id: points frozen})."""
    return _lots_aside(sc, member, {lot_id: MAX_POINTS for lot_id in lot_ids}, AVAILABLE, FROZEN, "freeze",
                       reason, reference)


@atomic
def unfreeze_lots(sc: Scope, member: Member, parts: dict[int, int], *, reason: str | None = None,
                  reference: str | None = None) -> tuple[JournalEntry | None, dict[int, int]]:
    """Give back up to `parts[lot]` frozen points of each lot (what `freeze_lots` froze)."""
    return _lots_aside(sc, member, parts, FROZEN, AVAILABLE, "unfreeze", reason, reference)


@atomic
def forfeit(sc: Scope, member: Member, wallet: Wallet, *, reason: str) -> JournalEntry | None:
    """Take all of the member's available and pending points in the wallet into its expiry account (an
    erased member's points cannot stay with nobody). None when there is nothing to take."""
    (accounts,) = open_members(sc, wallet, member)
    amount = accounts[AVAILABLE].balance + accounts[PENDING].balance
    if amount == 0:
        return None
    b = sc.builder("forfeit", amount, wallet, member_pk=member.id, reason=reason)
    for kind in (AVAILABLE, PENDING):
        if accounts[kind].balance:
            b.take(accounts[kind], accounts[kind].balance)
    b.post(system_account(sc.session, wallet.id, EXPIRY), amount)
    return b.finish()


# ---- holds: two-phase spend ------------------------------------------------------------------

@atomic
def hold(
    sc: Scope, member: Member, points: int, *, reference: str | None = None, expires_at: dt.datetime | None = None
) -> Hold:
    check_points(points)
    if expires_at is not None and expires_at <= sc.now:
        raise InvalidRequest("expires_at must be in the future", code="invalid_expiry")
    (accounts,) = open_members(sc, sc.wallet, member)
    h = Hold(program_id=sc.program.id, wallet_id=sc.wallet.id, member_pk=member.id, points=points,
             status="open", reference=reference, expires_at=expires_at, created_at=sc.now)
    sc.session.add(h)
    sc.session.flush()
    b = sc.builder("hold", points, member_pk=member.id, hold_id=h.id, reference=reference)
    for lot, part in b.take(accounts[AVAILABLE], points):
        b.move(lot, accounts[HELD], part)
    h.hold_entry_id = b.finish().id
    sc.session.flush()
    return h


def get_hold(sc: Scope, hold_id: int) -> Hold:
    h = sc.session.get(Hold, hold_id)
    if h is None or h.program_id != sc.program.id:
        raise NotFound(f"unknown hold {hold_id}", code="unknown_hold")
    return h


def _settle_hold(sc: Scope, hold_id: int, status: str) -> Hold:
    h = get_hold(sc, hold_id)
    wallet = sc.session.get_one(Wallet, h.wallet_id)
    member = sc.session.get_one(Member, h.member_pk)
    lock_members(sc.session, [member.id])
    sc.session.flush()
    sc.session.refresh(h)  # status as of the lock, not as first read
    if h.status != "open":
        raise Conflict(f"hold {hold_id} is already {h.status}", code="hold_not_open")
    accounts = member_accounts(sc.session, member.id, wallet.id)
    moves = sc.session.scalars(select(LotMove).where(LotMove.entry_id == h.hold_entry_id, LotMove.amount > 0))
    b = sc.builder("capture" if status == "captured" else "release", h.points, wallet, member_pk=member.id,
                   hold_id=h.id, reference=h.reference)
    for mv in moves:
        lot = sc.session.get_one(Lot, mv.lot_id)
        b.move(lot, accounts[HELD], -mv.amount)
        if status == "released":
            b.credit_available(accounts, lot, mv.amount)
    if status == "captured":
        b.post(system_account(sc.session, wallet.id, REDEMPTION), h.points)
    h.settle_entry_id = b.finish().id
    h.status, h.settled_at = status, sc.now
    if status == "released":
        settle_member(sc, wallet, member.id)  # released points may already be past expiry
    return h


@atomic
def capture(sc: Scope, hold_id: int) -> Hold:
    return _settle_hold(sc, hold_id, "captured")


@atomic
def release(sc: Scope, hold_id: int) -> Hold:
    return _settle_hold(sc, hold_id, "released")


# ---- reversal --------------------------------------------------------------------------------

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
