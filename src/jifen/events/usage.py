"""Caps and budgets as stored: read (and, for programme-wide budgets, locked) and written back."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.db import upsert
from jifen.rules.engine import UsageBook
from jifen.rules.models import RuleUsage


def load_usage(session: Session, program_id: int, keys: list[tuple[str, int, str]]) -> dict:
    """Current usage for caps and budgets. A member's rows are guarded by the member lock; a
    programme-wide budget row is created if missing and locked, so concurrent awards queue on it."""
    shared = [k for k in keys if k[1] == 0]
    if shared:
        session.execute(upsert(session, RuleUsage).on_conflict_do_nothing(), [
            {"program_id": program_id, "key": k, "member_pk": 0, "period": p, "points": 0} for k, _, p in shared])
    found = {}
    for key, member_pk, period in keys:
        q = select(RuleUsage.points).where(RuleUsage.program_id == program_id, RuleUsage.key == key,
                                           RuleUsage.member_pk == member_pk, RuleUsage.period == period)
        found[(key, member_pk, period)] = session.scalar(q.with_for_update() if member_pk == 0 else q) or 0
    return found


def save_usage(session: Session, program_id: int, book: UsageBook) -> None:
    if not book.changed:
        return
    insert = upsert(session, RuleUsage)
    stmt = insert.on_conflict_do_update(index_elements=["program_id", "key", "member_pk", "period"],
                                        set_={"points": insert.excluded.points})
    session.execute(stmt, [{"program_id": program_id, "key": k, "member_pk": m, "period": p, "points": book.used[(k, m, p)]}
                           for k, m, p in sorted(book.changed)])
