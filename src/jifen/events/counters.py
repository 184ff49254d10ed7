"""The counter functions rule conditions may call, answered from the stored events of one member.

The event being evaluated is already stored (same transaction), so "count" includes it; events at the
same instant are ordered by id, so a batch and the same events sent one by one see the same counts.
Statements are built once: a condition that never calls a counter costs nothing.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, aliased

from jifen.engagement.models import TeamMember
from jifen.events.models import Event
from jifen.rules.engine import Counters

_AT: BindParameter[dt.datetime]
_PK: BindParameter[int]
_AT, _PK = bindparam("at"), bindparam("pk")
_MINE = (Event.member_pk == bindparam("member"), Event.type == bindparam("type"))
_UP_TO = or_(Event.occurred_at < _AT, and_(Event.occurred_at == _AT, Event.id <= _PK))
_BEFORE = or_(Event.occurred_at < _AT, and_(Event.occurred_at == _AT, Event.id < _PK))
_CALENDAR = Event.occurred_at >= bindparam("start")  # day / week / month / year: from the period's start
_ROLLING = Event.occurred_at > bindparam("start")  # "30d": the last 30 × 24 hours
_COUNT = select(func.count()).where(*_MINE, _UP_TO)
_AMOUNT = select(func.coalesce(func.sum(Event.amount), 0)).where(*_MINE, _UP_TO)
_WINDOWED = {(q, kind): q.where(cond) for q in (_COUNT, _AMOUNT)
             for kind, cond in (("calendar", _CALENDAR), ("rolling", _ROLLING))}
_TIMES = select(Event.occurred_at).where(*_MINE, _UP_TO)
_TIMES_SINCE = _TIMES.where(_CALENDAR)
_mine = aliased(TeamMember)
_TEAM_SIZE = select(func.count()).select_from(TeamMember).where(
    TeamMember.team_id == select(_mine.team_id).where(_mine.member_pk == bindparam("member")).scalar_subquery())
_LAST_BEFORE = select(func.max(Event.occurred_at)).where(*_MINE, _BEFORE)


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
    def params(type_: str, **more) -> dict:
        return {"member": member_pk, "type": type_, "at": at, "pk": event_pk, **more}

    def windowed(q, type_: str, period: str):
        start = period_start(period, at, tz)
        if start is None:
            return session.scalar(q, params(type_))
        kind = "rolling" if period[-1] == "d" and period != "day" else "calendar"
        return session.scalar(_WINDOWED[(q, kind)], params(type_, start=start))

    def count(type_: str, period: str) -> int:
        return int(windowed(_COUNT, type_, period) or 0)

    def amount(type_: str, period: str) -> float:
        return float(windowed(_AMOUNT, type_, period) or 0)

    def streak(type_: str) -> int:
        today = at.astimezone(tz).date()
        since: dt.datetime | None = at - dt.timedelta(days=62)
        while True:
            rows = session.scalars(_TIMES_SINCE, params(type_, start=since)) if since else session.scalars(
                _TIMES, params(type_))
            dates = {t.astimezone(tz).date() for t in rows}
            days = 0
            while today - dt.timedelta(days=days) in dates:
                days += 1
            if since is None or days < 60:
                return days
            since = None  # a long streak: look at the whole history once

    def days_since(type_: str) -> int:
        last = session.scalar(_LAST_BEFORE, params(type_))
        if last is None:
            return -1
        return (at.astimezone(tz).date() - last.astimezone(tz).date()).days

    def team_size() -> int:
        return int(session.scalar(_TEAM_SIZE, {"member": member_pk}) or 0)

    return Counters(count=count, amount=amount, streak=streak, days_since=days_since, team_size=team_size)
