"""Ledger operations. Each runs inside the caller's transaction and writes through EntryBuilder.

Before touching a member, an operation settles the member: pending lots whose time has come become
available and lots past expiry expire, so every operation sees exact balances.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.db import among
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.ledger.chain import GENESIS
from jifen.ledger.engine import lock_members, member_accounts, system_account
from jifen.ledger.models import (
    ADJUSTMENT,
    AVAILABLE,
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
)

# The surface callers use as `ops.…`: the scope and its helpers (ledger/scope.py), reversals (ledger/reversal.py).
from jifen.ledger.reversal import apportion as apportion
from jifen.ledger.reversal import get_entry as get_entry
from jifen.ledger.reversal import reverse as reverse
from jifen.ledger.reversal import reversible as reversible
from jifen.ledger.scope import MAX_POINTS as MAX_POINTS
from jifen.ledger.scope import REVERSIBLE as REVERSIBLE
from jifen.ledger.scope import Scope as Scope
from jifen.ledger.scope import atomic as atomic
from jifen.ledger.scope import check_points as check_points
from jifen.ledger.scope import open_members as open_members
from jifen.ledger.scope import settle_member as settle_member
from jifen.members.models import Member
from jifen.programs.expiry import expiry_for
from jifen.programs.models import Program, Wallet
from jifen.rows import insert_rows


def open_chain(session: Session, program: Program) -> None:
    """A new programme's hash chain: nothing sealed yet."""
    session.add(ChainHead(program_id=program.id, seq=0, hash=GENESIS))


def open_accounts(session: Session, wallet_ids: Collection[int], member_pks: Collection[int] = (), *,
                  system: bool = False) -> None:
    """Zero accounts in these wallets: every state of each member, and with `system` the programme's own
    (issuance, redemption, expiry, adjustment) for a new wallet."""
    session.flush()  # (the members and wallets named here, if just added, go first)
    # Rows, not ORM objects: a migration opens five accounts for each of thousands of members per batch.
    insert_rows(session, Account, [{"wallet_id": w, "member_pk": None, "kind": k, "balance": 0}
                                   for w in wallet_ids for k in SYSTEM_KINDS] if system else [])
    insert_rows(session, Account, [{"wallet_id": w, "member_pk": pk, "kind": k, "balance": 0}
                                   for w in wallet_ids for pk in member_pks for k in MEMBER_KINDS])


def available(session: Session, member: Member, wallet: Wallet) -> int:
    """The member's spendable points in the wallet, as stored (not settled: a quick look, not a promise)."""
    return member_accounts(session, member.id, wallet.id)[AVAILABLE].balance


def available_of(session: Session, member_pks: Collection[int], wallet: Wallet) -> dict[int, int]:
    """`available` for many members in one read."""
    rows = session.execute(select(Account.member_pk, Account.balance).where(
        Account.wallet_id == wallet.id, Account.kind == AVAILABLE, among(Account.member_pk, "members")),
        {"members": sorted(set(member_pks))})
    return {cast(int, pk): balance for pk, balance in rows}


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

