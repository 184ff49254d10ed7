"""What every ledger operation stands on: its Scope (where, when, who), `atomic` (a savepoint around it),
the points check, and settling a member (due pending lots mature, overdue lots expire) before touching them."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.errors import InvalidRequest
from jifen.ledger.engine import AccountRef, EntryBuilder, lock_members, member_accounts, system_account
from jifen.ledger.models import (
    AVAILABLE,
    EXPIRY,
    PENDING,
    JournalEntry,
    Lot,
)
from jifen.members.models import Member
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
