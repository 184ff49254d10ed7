"""The counter functions rule conditions may call, answered from the stored events of one member.

The event being evaluated is already stored (same transaction), so "count" includes it; events at the
same instant are ordered by id, so a batch and the same events sent one by one see the same counts.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from jifen.events.models import Event
from jifen.rules.engine import Counters


def period_start(period: str, at: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    """Start of the calendar period containing `at` (programme timezone), or of a rolling window 'Nd'."""
    if period == "all":
        return None
    if period.endswith("d") and period != "day":
        return at - dt.timedelta(days=int(period[:-1]))
    local = at.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        local -= dt.timedelta(days=local.weekday())
    elif period == "month":
        local = local.replace(day=1)
    elif period == "year":
        local = local.replace(month=1, day=1)
    return local.replace(tzinfo=None).replace(tzinfo=tz).astimezone(dt.UTC)


def db_counters(session: Session, member_pk: int, event_pk: int, at: dt.datetime, tz: ZoneInfo) -> Counters:
    up_to = or_(Event.occurred_at < at, and_(Event.occurred_at == at, Event.id <= event_pk))
    before = or_(Event.occurred_at < at, and_(Event.occurred_at == at, Event.id < event_pk))

    def window(q, type_: str, period: str):
        q = q.where(Event.member_pk == member_pk, Event.type == type_, up_to)
        start = period_start(period, at, tz)
        if start is not None:
            q = q.where(Event.occurred_at > start if period[-1] == "d" and period != "day" else Event.occurred_at >= start)
        return q

    def count(type_: str, period: str) -> int:
        return int(session.scalar(window(select(func.count()), type_, period)) or 0)

    def amount(type_: str, period: str) -> float:
        return float(session.scalar(window(select(func.coalesce(func.sum(Event.amount), 0)), type_, period)) or 0)

    def streak(type_: str) -> int:
        today = at.astimezone(tz).date()
        days, since = 0, at - dt.timedelta(days=62)
        while True:
            q = select(Event.occurred_at).where(Event.member_pk == member_pk, Event.type == type_, up_to)
            if since is not None:
                q = q.where(Event.occurred_at >= since)
            dates = {t.astimezone(tz).date() for t in session.scalars(q)}
            days = 0
            while today - dt.timedelta(days=days) in dates:
                days += 1
            if since is None or days < 60:
                return days
            since = None  # a long streak: look at the whole history once

    def days_since(type_: str) -> int:
        last = session.scalar(select(func.max(Event.occurred_at)).where(
            Event.member_pk == member_pk, Event.type == type_, before))
        if last is None:
            return -1
        return (at.astimezone(tz).date() - last.astimezone(tz).date()).days

    return Counters(count=count, amount=amount, streak=streak, days_since=days_since)


