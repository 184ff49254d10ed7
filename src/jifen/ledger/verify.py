"""`jifen ledger verify`: prove the ledger is whole.

Checks: every entry's postings sum to zero; every balance equals the sum of its postings; no member
balance is negative (debt never positive); every lot's state columns equal its moves and every
member balance equals its lots; held balances equal open holds; the hash chain is intact from the
first entry to the chain head (an edited, inserted or deleted journal row breaks it) — see chain_check for
how the chain is checked in parallel and from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from jifen.ledger.chain_check import ChainReport, Problem, check_chain, save_checkpoints
from jifen.ledger.models import (
    DEBT,
    HELD,
    LOT_KINDS,
    Account,
    Hold,
    JournalEntry,
    Lot,
    LotMove,
    Posting,
)

__all__ = ["ChainReport", "Problem", "check_balances", "check_chain", "check_lots", "save_checkpoints", "verify",
           "verify_ledger"]


def _last_entry_of_account(session: Session, account_id: int) -> int | None:
    return session.scalar(select(func.max(Posting.entry_id)).where(Posting.account_id == account_id))


def _last_entry_of_lot(session: Session, lot_id: int) -> int | None:
    return session.scalar(select(func.max(LotMove.entry_id)).where(LotMove.lot_id == lot_id))


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


def verify_ledger(session: Session, progress: Callable[[int, int], None] | None = None, *, processes: int = 1,
                  since_checkpoint: bool = False) -> ChainReport:
    """Every check; the hash chains in `processes` processes, from the checkpoints with since_checkpoint.
    Problems come earliest broken entry first; `ends` are the checkpoints to save if there are none."""
    report = check_chain(session, progress, processes=processes, since_checkpoint=since_checkpoint)
    problems = report.problems + check_balances(session) + check_lots(session)
    report.problems = sorted(problems, key=lambda p: (p.entry_id is None, p.entry_id or 0))
    return report


def verify(session: Session, progress: Callable[[int, int], None] | None = None, *, processes: int = 1,
           since_checkpoint: bool = False) -> list[Problem]:
    """All problems found, the earliest broken entry first."""
    return verify_ledger(session, progress, processes=processes, since_checkpoint=since_checkpoint).problems
