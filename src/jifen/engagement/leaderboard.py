"""Leaderboards from the database: points awarded, ¥ spent or activity (events) per member in the current
day / week / month / quarter of the programme's calendar, with a member's own rank. This is the
database path of the embedded default; at millions of members the same board belongs in a Redis sorted
set fed by the outbox (not built yet)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.events.counters import period_start
from jifen.events.models import Event
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.pii import mask


def period_since(program: Program, period: str, now: dt.datetime) -> dt.datetime:
    return _start(period, now, ZoneInfo(program.timezone))


def _start(period: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if period != "quarter":
        return cast(dt.datetime, period_start(period, now, tz))  # (None only for "all", not a board period)
    local = now.astimezone(tz)
    first = local.replace(month=(local.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return first.replace(tzinfo=None).replace(tzinfo=tz).astimezone(dt.UTC)


def _measure(program: Program, metric: str, start: dt.datetime, now: dt.datetime):
    """Per member: points awarded, ¥ spent (purchases less refunds) or events (activity) in the window."""
    if metric == "points":
        return (select(JournalEntry.member_pk, func.sum(JournalEntry.points).label("value"))
                .where(JournalEntry.program_id == program.id, JournalEntry.type == "award",
                       JournalEntry.occurred_at >= start, JournalEntry.occurred_at <= now)
                .group_by(JournalEntry.member_pk).subquery())
    value = (func.sum(func.coalesce(Event.amount, 0) - Event.refunded_amount) if metric == "spend"
             else func.count())
    q = select(Event.member_pk, value.label("value")).where(
        Event.program_id == program.id, Event.occurred_at >= start, Event.occurred_at <= now)
    if metric == "spend":
        q = q.where(Event.type == "purchase")
    return q.group_by(Event.member_pk).subquery()


def points_board(session: Session, program: Program, period: str, now: dt.datetime, limit: int,
                 member: Member | None = None, metric: str = "points") -> dict:
    start = _start(period, now, ZoneInfo(program.timezone))
    measure = _measure(program, metric, start, now)
    rows = session.execute(select(Member.member_id, Member.name, measure.c.value)
                           .join(measure, measure.c.member_pk == Member.id)
                           .order_by(measure.c.value.desc(), Member.member_id).limit(limit)).all()
    board: dict[str, Any] = {"period": period, "metric": metric, "since": start.isoformat(), "source": "database",
             "top": [{"rank": i + 1, "member_id": mid, "name": mask(name), metric: _num(v)}
                     for i, (mid, name, v) in enumerate(rows)]}
    if member is not None:
        mine = session.scalar(select(measure.c.value).where(measure.c.member_pk == member.id)) or 0
        above = cast(int, session.scalar(select(func.count()).select_from(measure).where(measure.c.value > mine)))
        board["me"] = {"member_id": member.member_id, metric: _num(mine), "rank": above + 1 if mine else None}
    return board


def _num(value):
    """Points and counts as whole numbers, ¥ as a string with two decimals."""
    if isinstance(value, Decimal) and value != value.to_integral_value():
        return str(value.quantize(Decimal("0.01")))
    return int(value)
