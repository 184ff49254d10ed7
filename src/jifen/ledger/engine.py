"""The one place that writes journal entries: postings, lot moves, balances and the hash chain.

Locking order (deadlock-free on PostgreSQL): member rows by id → system accounts by id → chain head
(taken at commit).
Everything about a member (its accounts and lots) changes only while its member row is locked.
Hot statements are built once at import (bindparam) — building SQL per call costs more than running it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from jifen.db import among
from jifen.errors import InsufficientPoints
from jifen.ledger.chain import entry_hash
from jifen.ledger.models import AVAILABLE, DEBT, LOT_KINDS, Account, ChainHead, JournalEntry, Lot, LotMove, Posting
from jifen.members.models import Member
from jifen.outbox import emit_entries
from jifen.programs.models import Program, Wallet
from jifen.rows import update_rows


@dataclass
class AccountRef:
    """An account as the engine needs it; `balance` is as of the member lock (members) or unknown (system)."""

    id: int
    kind: str
    member_pk: int | None
    balance: int = 0


_LOCK_MEMBERS = (select(Member.id).where(among(Member.id, "ids"))
                 .order_by(Member.id).with_for_update())
_MEMBER_ACCOUNTS = select(Account.id, Account.kind, Account.member_pk, Account.balance).where(
    Account.member_pk == bindparam("member"), Account.wallet_id == bindparam("wallet"))
_SYSTEM_ACCOUNTS = select(Account.id, Account.kind).where(
    Account.member_pk.is_(None), Account.wallet_id == bindparam("wallet"))
_ADD_BALANCE = (update(Account).where(Account.id == bindparam("account"))
                .values(balance=Account.balance + bindparam("delta")).returning(Account.balance))
_HEAD = select(ChainHead.seq, ChainHead.hash).where(ChainHead.program_id == bindparam("program")).with_for_update()
_SET_HEAD = (update(ChainHead).where(ChainHead.program_id == bindparam("program"))
             .values(seq=bindparam("seq"), hash=bindparam("hash")))


_HELD = "jifen.ledger.held_members"  # (in the session's info: members locked for the whole transaction)


def lock_members(session: Session, member_pks: Iterable[int]) -> None:
    """Row-lock members in id order. SQLite needs none: BEGIN IMMEDIATE already serialises writers. Members
    `hold_members` recorded are locked already, and not locked again."""
    if session.get_bind().dialect.name != "sqlite":
        pks = set(member_pks) - session.info.get(_HELD, set())
        if pks:
            session.execute(_LOCK_MEMBERS, {"ids": sorted(pks)}).all()


def hold_members(session: Session, member_pks: Iterable[int]) -> None:
    """Lock members for the rest of the transaction, before any savepoint (a savepoint rolled back releases
    the locks taken in it): a group of writes (flows/redeem.py) then locks each of them once, not once per
    write and step. `release_members` when the transaction ends."""
    pks = set(member_pks)
    lock_members(session, pks)
    session.info[_HELD] = session.info.get(_HELD, set()) | pks


def release_members(session: Session) -> None:
    session.info.pop(_HELD, None)


def member_accounts(session: Session, member_pk: int, wallet_id: int) -> dict[str, AccountRef]:
    rows = session.execute(_MEMBER_ACCOUNTS, {"member": member_pk, "wallet": wallet_id})
    return {r.kind: AccountRef(r.id, r.kind, r.member_pk, r.balance) for r in rows}


def system_account(session: Session, wallet_id: int, kind: str) -> AccountRef:
    """System accounts never change once a wallet exists: cached on the database connection."""
    cache = session.connection().info.setdefault("jifen_system_accounts", {})
    if wallet_id not in cache:
        cache[wallet_id] = {r.kind: r.id for r in session.execute(_SYSTEM_ACCOUNTS, {"wallet": wallet_id})}
    return AccountRef(cache[wallet_id][kind], kind, None)


_FIFO = {kind: select(Lot).where(Lot.member_pk == bindparam("member"), Lot.wallet_id == bindparam("wallet"),
                                  getattr(Lot, kind) > 0).order_by(Lot.expires_at.is_(None), Lot.expires_at, Lot.id)
         for kind in LOT_KINDS}
_INSERT_MOVES = insert(LotMove)
_INSERT_POSTINGS = insert(Posting)


def fifo_lots(session: Session, member_pk: int | None, wallet_id: int, kind: str) -> list[Lot]:
    """The member's lots holding points in `kind`, earliest expiry first (never-expiring last)."""
    return list(session.scalars(_FIFO[kind], {"member": member_pk, "wallet": wallet_id}))


class EntryBuilder:
    """Collects one entry's postings and lot moves, then writes them atomically with `finish()`."""

    def __init__(self, session: Session, program: Program, wallet: Wallet, type: str, *, points: int,
                 now: dt.datetime, occurred_at: dt.datetime | None = None, **fields: Any) -> None:
        self.session = session
        self.program = program
        self.wallet = wallet
        self.entry = JournalEntry(program_id=program.id, type=type, wallet_id=wallet.id, points=points,
                                  occurred_at=occurred_at or now, recorded_at=now, **fields)
        session.add(self.entry)
        session.flush()
        self.postings: dict[int, int] = defaultdict(int)
        self.accounts: dict[int, AccountRef] = {}
        self.moves: list[tuple[Lot, AccountRef, int]] = []

    @property
    def id(self) -> int:
        return self.entry.id

    def balance(self, account: AccountRef) -> int:
        """The account's balance including what this entry has posted so far."""
        return account.balance + self.postings.get(account.id, 0)

    def post(self, account: AccountRef, amount: int) -> None:
        self.accounts[account.id] = account
        self.postings[account.id] += amount

    def move(self, lot: Lot, account: AccountRef, amount: int) -> None:
        """Move `amount` points of `lot` into (+) or out of (−) the member account `account`."""
        if amount == 0:
            return
        new = getattr(lot, account.kind) + amount
        if new < 0:
            raise AssertionError(f"lot {lot.id} would go negative in {account.kind}")
        setattr(lot, account.kind, new)
        self.moves.append((lot, account, amount))
        self.post(account, amount)

    def new_lot(self, member_pk: int, points: int, *, earned_at: dt.datetime, expires_at: dt.datetime | None,
                pending_until: dt.datetime | None = None, origin: int | None = None) -> Lot:
        lot = Lot(member_pk=member_pk, wallet_id=self.wallet.id, source_entry_id=self.id, origin_lot_id=origin,
                  points=points, earned_at=earned_at, expires_at=expires_at, pending_until=pending_until,
                  available=0, pending=0, held=0, frozen=0)
        self.session.add(lot)
        return lot

    def take(self, account: AccountRef, amount: int) -> list[tuple[Lot, int]]:
        """Drain `amount` from the member account's lots, earliest expiry first; returns what each paid."""
        if self.balance(account) < amount:
            raise InsufficientPoints(f"not enough {account.kind} points: {self.balance(account)} < {amount}")
        taken = []
        for lot in fifo_lots(self.session, account.member_pk, self.wallet.id, account.kind):
            part = min(amount, getattr(lot, account.kind))
            self.move(lot, account, -part)
            taken.append((lot, part))
            amount -= part
            if amount == 0:
                return taken
        raise AssertionError(f"lots of account {account.id} do not cover its balance")

    def credit_available(self, accounts: dict[str, AccountRef], lot: Lot, amount: int) -> None:
        """Put points of `lot` into available, paying off any refund debt first."""
        # Both legs are recorded as lot moves, so a lot's inflows always add up to its points.
        self.move(lot, accounts[AVAILABLE], amount)
        debt = accounts[DEBT]
        pay = min(amount, -self.balance(debt))
        if pay > 0:
            self.move(lot, accounts[AVAILABLE], -pay)
            self.post(debt, pay)

    def finish(self) -> JournalEntry:
        postings = {a: v for a, v in self.postings.items() if v != 0}
        if sum(postings.values()) != 0:
            raise AssertionError(f"entry {self.id} does not balance: {postings}")
        session = self.session
        session.flush()  # new lots get their ids, changed lots their columns
        moves = [(lot.id, acc.id, amount) for lot, acc, amount in self.moves]
        if moves:
            session.execute(_INSERT_MOVES, [
                {"entry_id": self.id, "lot_id": lot, "account_id": acc, "amount": amount} for lot, acc, amount in moves])
        session.execute(_INSERT_POSTINGS, [
            {"entry_id": self.id, "account_id": a, "member_pk": self.accounts[a].member_pk, "amount": v}
            for a, v in postings.items()])
        # Member accounts first (already locked through their member), then the shared system
        # accounts in id order: short, ordered locks on the hot rows.
        for account_id in sorted(postings, key=lambda a: (self.accounts[a].member_pk is None, a)):
            account = self.accounts[account_id]
            new = session.execute(_ADD_BALANCE, {"account": account_id, "delta": postings[account_id]}).scalar_one()
            if account.member_pk is not None:
                if new > 0 if account.kind == DEBT else new < 0:
                    raise InsufficientPoints(f"{account.kind} balance would become {new}")
                account.balance = new
        self.postings.clear()
        # Sealed into the hash chain at commit (see seal_on_commit): the chain head is locked only
        # for the last moments of the transaction, once for all its entries.
        to_seal(session, self.entry, list(postings.items()), moves)
        emit_entries(session, [self.entry])
        return self.entry


UNSEALED = "jifen_unsealed_entries"


@dataclass
class EntryRow:
    """A journal entry written by the set path (ledger/bulk.py): a plain record with the ORM entry's fields."""

    id: int
    program_id: int
    type: str
    wallet_id: int
    points: int
    member_pk: int | None
    reason: str | None
    actor: str | None
    reference: str | None
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    counterparty_pk: int | None = None
    reverses_entry_id: int | None = None
    hold_id: int | None = None
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def to_seal(session: Session, entry: JournalEntry | EntryRow, postings: list[tuple[int, int]],
            moves: list[tuple[int, int, int]]) -> None:
    """Queue a written entry for the hash chain, tagged with the savepoint it was written in."""
    session.info.setdefault(UNSEALED, []).append((entry, postings, moves, session.get_nested_transaction()))


@event.listens_for(Session, "before_commit")
def seal_on_commit(session: Session) -> None:
    """Append the transaction's entries to their programme's hash chain, in the order written."""
    if session.in_nested_transaction() or not session.info.get(UNSEALED):
        return
    pending = session.info.pop(UNSEALED)
    for program_id in sorted({e.program_id for e, *_ in pending}):
        head = session.execute(_HEAD, {"program": program_id}).one()
        seq, prev, rows = head.seq, head.hash, []
        for entry, postings, moves, _ in pending:
            if entry.program_id != program_id:
                continue
            seq += 1
            link = {"seq": seq, "prev_hash": prev}
            if isinstance(entry, JournalEntry):  # written with rows.update_rows below: not marked dirty
                for name, value in link.items():
                    set_committed_value(entry, name, value)
                set_committed_value(entry, "hash", entry_hash(entry, postings, moves))
            else:
                entry.seq, entry.prev_hash = seq, prev
                entry.hash = entry_hash(entry, postings, moves)
            prev = entry.hash
            rows.append({"id": entry.id, "seq": seq, "prev_hash": entry.prev_hash, "hash": entry.hash})
        if rows:
            update_rows(session, JournalEntry, rows)
            session.connection().execute(_SET_HEAD, {"program": program_id, "seq": seq, "hash": prev})


@event.listens_for(Session, "after_soft_rollback")
def _forget_unsealed(session: Session, rolled_back: Any) -> None:
    """A rolled-back savepoint (or the whole transaction) takes its entries out of the chain."""
    if UNSEALED not in session.info:
        return
    if not rolled_back.nested:
        session.info.pop(UNSEALED, None)
        return
    session.info[UNSEALED] = [item for item in session.info[UNSEALED] if not _within(item[3], rolled_back)]


def _within(tx: Any, outer: Any) -> bool:
    while tx is not None:
        if tx is outer:
            return True
        tx = tx.parent
    return False
