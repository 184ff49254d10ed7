"""`jifen ledger verify`: prove the ledger is whole.

Checks: every entry's postings sum to zero; every balance equals the sum of its postings; no member
balance is negative (debt never positive); every lot's state columns equal its moves and every
member balance equals its lots; held balances equal open holds; the hash chain is intact from the
first entry to the chain head (an edited, inserted or deleted journal row breaks it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from jifen.ledger.chain import GENESIS, entry_hash
from jifen.ledger.models import (
    DEBT,
    HELD,
    LOT_KINDS,
    Account,
    ChainHead,
    Hold,
    JournalEntry,
    Lot,
    LotMove,
    Posting,
)


@dataclass(frozen=True)
class Problem:
    check: str
    entry_id: int | None  # the first broken entry, where one can be named
    message: str

    def __str__(self) -> str:
        where = f"entry {self.entry_id}: " if self.entry_id is not None else ""
        return f"[{self.check}] {where}{self.message}"


def _last_entry_of_account(session: Session, account_id: int) -> int | None:
    return session.scalar(select(func.max(Posting.entry_id)).where(Posting.account_id == account_id))


def _last_entry_of_lot(session: Session, lot_id: int) -> int | None:
    return session.scalar(select(func.max(LotMove.entry_id)).where(LotMove.lot_id == lot_id))


def check_chain(session: Session, chunk: int = 2000, progress: Callable[[int], None] | None = None) -> list[Problem]:
    problems: list[Problem] = []
    orphans = session.scalars(select(JournalEntry.id).where(JournalEntry.seq.is_(None)).order_by(JournalEntry.id))
    problems += [Problem("chain", eid, "entry is not linked into the hash chain") for eid in orphans]
    for head in session.scalars(select(ChainHead).order_by(ChainHead.program_id)).all():
        prev_hash, expected_seq, last = GENESIS, 1, 0
        while True:
            entries = session.scalars(
                select(JournalEntry)
                .where(JournalEntry.program_id == head.program_id, JournalEntry.seq >= expected_seq)
                .order_by(JournalEntry.seq).limit(chunk)
            ).all()
            if not entries:
                break
            ids = [e.id for e in entries]
            postings: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
            for p in session.execute(select(Posting.entry_id, Posting.account_id, Posting.amount)
                                     .where(Posting.entry_id.in_(ids))):
                postings[p.entry_id].append((p.account_id, p.amount))
            moves: dict[int, list[tuple[int, int, int]]] = {i: [] for i in ids}
            for m in session.execute(select(LotMove.entry_id, LotMove.lot_id, LotMove.account_id, LotMove.amount)
                                     .where(LotMove.entry_id.in_(ids))):
                moves[m.entry_id].append((m.lot_id, m.account_id, m.amount))
            for e in entries:
                if e.seq != expected_seq:
                    return problems + [Problem("chain", e.id, f"sequence gap: expected {expected_seq}, found "
                                               f"{e.seq} (an entry was removed)")]
                if e.prev_hash != prev_hash:
                    return problems + [Problem("chain", e.id, "previous-hash link broken")]
                if entry_hash(e, postings[e.id], moves[e.id]) != e.hash:
                    return problems + [Problem("chain", e.id, "content does not match its hash (altered entry, "
                                               "posting or lot move)")]
                prev_hash, expected_seq, last = e.hash, e.seq + 1, e.id
            if progress:
                progress(len(entries))
        if expected_seq - 1 != head.seq or prev_hash != head.hash:
            problems.append(Problem("chain", last or None, f"chain of programme {head.program_id} ends at seq "
                                    f"{expected_seq - 1} but its head says {head.seq} (entries removed at the end)"))
    return problems


def check_balances(session: Session) -> list[Problem]:
    problems = []
    for entry_id, total in session.execute(
        select(Posting.entry_id, func.sum(Posting.amount)).group_by(Posting.entry_id)
        .having(func.sum(Posting.amount) != 0).order_by(Posting.entry_id)
    ):
        problems.append(Problem("double-entry", entry_id, f"postings sum to {total}, not 0"))
    empty = select(JournalEntry.id).where(~select(Posting.id).where(Posting.entry_id == JournalEntry.id).exists())
    problems += [Problem("double-entry", eid, "entry has no postings") for eid in session.scalars(empty)]

    sums = (select(Posting.account_id, func.sum(Posting.amount).label("total"))
            .group_by(Posting.account_id).subquery())
    rows = session.execute(
        select(Account.id, Account.kind, Account.member_pk, Account.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == Account.id)
        .where(Account.balance != func.coalesce(sums.c.total, 0))
    ).all()
    for acc_id, kind, member_pk, balance, total in rows:
        problems.append(Problem("balance", _last_entry_of_account(session, acc_id),
                                f"account {acc_id} ({kind}, member {member_pk}) balance {balance} != postings {total}"))
    negative = session.execute(
        select(Account.id, Account.kind, Account.balance).where(
            Account.member_pk.is_not(None),
            case((Account.kind == DEBT, Account.balance > 0), else_=Account.balance < 0),
        )
    ).all()
    for acc_id, kind, balance in negative:
        problems.append(Problem("sign", _last_entry_of_account(session, acc_id),
                                f"member account {acc_id} ({kind}) has balance {balance}"))
    return problems


def check_lots(session: Session) -> list[Problem]:
    problems = []
    kind_sum = {k: func.coalesce(func.sum(case((Account.kind == k, LotMove.amount), else_=0)), 0) for k in LOT_KINDS}
    moved = (select(LotMove.lot_id, *[kind_sum[k].label(k) for k in LOT_KINDS])
             .join(Account, Account.id == LotMove.account_id).group_by(LotMove.lot_id).subquery())
    rows = session.execute(
        select(Lot, *[func.coalesce(moved.c[k], 0) for k in LOT_KINDS]).outerjoin(moved, moved.c.lot_id == Lot.id)
        .where(
            (Lot.available != func.coalesce(moved.c.available, 0)) | (Lot.pending != func.coalesce(moved.c.pending, 0))
            | (Lot.held != func.coalesce(moved.c.held, 0)) | (Lot.frozen != func.coalesce(moved.c.frozen, 0))
            | (Lot.available < 0) | (Lot.pending < 0) | (Lot.held < 0) | (Lot.frozen < 0)
            | (Lot.available + Lot.pending + Lot.held + Lot.frozen > Lot.points)
        )
    ).all()
    for lot, *sums in rows:
        problems.append(Problem("lots", _last_entry_of_lot(session, lot.id),
                                f"lot {lot.id} holds {[getattr(lot, k) for k in LOT_KINDS]} (available, pending, "
                                f"held, frozen) but its moves say {list(sums)} of {lot.points}"))
    for kind in LOT_KINDS:
        column = getattr(Lot, kind)
        in_lots = (select(Lot.member_pk, Lot.wallet_id, func.sum(column).label("total"))
                   .group_by(Lot.member_pk, Lot.wallet_id).subquery())
        rows = session.execute(
            select(Account.id, Account.balance, func.coalesce(in_lots.c.total, 0))
            .outerjoin(in_lots, (in_lots.c.member_pk == Account.member_pk) & (in_lots.c.wallet_id == Account.wallet_id))
            .where(Account.kind == kind, Account.member_pk.is_not(None),
                   Account.balance != func.coalesce(in_lots.c.total, 0))
        ).all()
        for acc_id, balance, total in rows:
            problems.append(Problem("lots", _last_entry_of_account(session, acc_id),
                                    f"account {acc_id} ({kind}) balance {balance} != its lots {total}"))
    open_holds = (select(Hold.member_pk, Hold.wallet_id, func.sum(Hold.points).label("total"))
                  .where(Hold.status == "open").group_by(Hold.member_pk, Hold.wallet_id).subquery())
    rows = session.execute(
        select(Account.id, Account.balance, func.coalesce(open_holds.c.total, 0))
        .outerjoin(open_holds, (open_holds.c.member_pk == Account.member_pk)
                   & (open_holds.c.wallet_id == Account.wallet_id))
        .where(Account.kind == HELD, Account.member_pk.is_not(None),
               Account.balance != func.coalesce(open_holds.c.total, 0))
    ).all()
    for acc_id, balance, total in rows:
        problems.append(Problem("holds", _last_entry_of_account(session, acc_id),
                                f"held account {acc_id} balance {balance} != open holds {total}"))
    return problems


def verify(session: Session, progress: Callable[[int], None] | None = None) -> list[Problem]:
    """All problems found, the earliest broken entry first."""
    problems = check_chain(session, progress=progress) + check_balances(session) + check_lots(session)
    return sorted(problems, key=lambda p: (p.entry_id is None, p.entry_id or 0))
