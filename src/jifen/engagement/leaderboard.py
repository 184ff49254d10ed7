"""Leaderboards from the ledger: points earned (awards less their reversals) per member in the current
day / week / month / quarter of the programme's calendar, with a member's own rank. This is the
database path of the embedded default; at millions of members the same board belongs in a Redis sorted
set fed by the outbox (not built yet)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.events.counters import period_start
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.models import Program


def period_since(program: Program, period: str, now: dt.datetime) -> dt.datetime:
    return _start(period, now, ZoneInfo(program.timezone))


def _start(period: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if period != "quarter":
        return period_start(period, now, tz)
    local = now.astimezone(tz)
    first = local.replace(month=(local.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return first.replace(tzinfo=None).replace(tzinfo=tz).astimezone(dt.UTC)


def points_board(session: Session, program: Program, period: str, now: dt.datetime, limit: int,
                 member: Member | None = None) -> dict:
    start = _start(period, now, ZoneInfo(program.timezone))
    earned = (select(JournalEntry.member_pk, func.sum(JournalEntry.points).label("points"))
              .where(JournalEntry.program_id == program.id, JournalEntry.type == "award",
                     JournalEntry.occurred_at >= start, JournalEntry.occurred_at <= now)
              .group_by(JournalEntry.member_pk).subquery())
    rows = session.execute(select(Member.member_id, Member.name, earned.c.points)
                           .join(earned, earned.c.member_pk == Member.id)
                           .order_by(earned.c.points.desc(), Member.member_id).limit(limit)).all()
    board = {"period": period, "since": start.isoformat(),
             "top": [{"rank": i + 1, "member_id": mid, "name": name, "points": int(p)}
                     for i, (mid, name, p) in enumerate(rows)]}
    if member is not None:
        mine = session.scalar(select(earned.c.points).where(earned.c.member_pk == member.id)) or 0
        above = session.scalar(select(func.count()).select_from(earned).where(earned.c.points > mine))
        board["me"] = {"member_id": member.member_id, "points": int(mine), "rank": above + 1 if mine else None}
    return board
