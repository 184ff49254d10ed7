"""Daily check-in on the programme's calendar: one per member per day (the day is part of the event id,
so concurrent requests cannot both count), points from the rules (seed 001: 5 a day, +50 on every 7th
day in a row), and make-up cards (補簽卡) for a missed day of the last week."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from jifen.db import upsert
from jifen.engagement.models import MakeupCards
from jifen.errors import Conflict, IdempotencyConflict, InvalidRequest
from jifen.events.counters import db_counters
from jifen.events.models import Event
from jifen.events.schemas import EventIn
from jifen.flows.intake import ingest
from jifen.ledger.engine import lock_members
from jifen.members.models import Member
from jifen.programs.models import Program

MAKEUP_DAYS = 7


def event_id(member: Member, day: dt.date) -> str:
    return f"check_in:{member.member_id}:{day.isoformat()}"


def check_in(session: Session, program: Program, member: Member, now: dt.datetime, *, day: dt.date | None = None,
             channel: str | None = None) -> dict:
    tz = ZoneInfo(program.timezone)
    today = now.astimezone(tz).date()
    makeup = day is not None and day != today
    # (day is a date whenever makeup is true; mypy does not follow the narrowing through `makeup`)
    if makeup and not (today - dt.timedelta(days=MAKEUP_DAYS) <= cast(dt.date, day) < today):
        raise InvalidRequest(f"a make-up check-in is for one of the last {MAKEUP_DAYS} days", code="makeup_window")
    target = cast(dt.date, day) if makeup else today
    if session.scalar(select(Event.id).where(Event.program_id == program.id,
                                             Event.event_id == event_id(member, target))):
        raise Conflict(f"{member.member_id} already checked in on {target}", code="already_checked_in")
    if makeup:
        lock_members(session, [member.id])
        used = cast(CursorResult[Any], session.execute(update(MakeupCards).where(
            MakeupCards.member_pk == member.id, MakeupCards.cards > 0).values(cards=MakeupCards.cards - 1))).rowcount
        if not used:
            raise Conflict("no make-up cards left", code="no_makeup_cards")
    at = dt.datetime.combine(target, dt.time(12), tz).astimezone(dt.UTC) if makeup else now
    ev = EventIn(event_id=event_id(member, target), member_id=member.member_id, type="check_in", occurred_at=at,
                 channel=channel, attributes={"makeup": True} if makeup else {})
    try:
        (result,) = ingest(session, program, [ev], now=now, actor="check-in")
    except IdempotencyConflict:  # a concurrent request checked in first
        raise Conflict(f"{member.member_id} already checked in on {target}", code="already_checked_in") from None
    if result["status"] != "processed":
        raise Conflict(f"{member.member_id} already checked in on {target}", code="already_checked_in")
    return result


def grant_cards(session: Session, member: Member, cards: int) -> int:
    if not 1 <= cards <= 100:
        raise InvalidRequest("grant 1 to 100 cards", code="invalid_cards")
    stmt = upsert(session, MakeupCards)
    session.execute(stmt.on_conflict_do_update(index_elements=["member_pk"],
                                               set_={"cards": MakeupCards.cards + stmt.excluded.cards}),
                    {"member_pk": member.id, "cards": cards})
    return cards_of(session, member)


def cards_of(session: Session, member: Member) -> int:
    return session.scalar(select(MakeupCards.cards).where(MakeupCards.member_pk == member.id)) or 0


def calendar(session: Session, program: Program, member: Member, month: str, now: dt.datetime) -> dict:
    """The days of a month (YYYY-MM) the member checked in, the streak now, make-up cards left."""
    tz = ZoneInfo(program.timezone)
    try:
        first = dt.date.fromisoformat(month + "-01")
    except ValueError:
        raise InvalidRequest("month is YYYY-MM", code="invalid_month") from None
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    start = dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(nxt, dt.time(), tz).astimezone(dt.UTC)
    days = sorted({t.astimezone(tz).date().isoformat() for t in session.scalars(select(Event.occurred_at).where(
        Event.member_pk == member.id, Event.type == "check_in", Event.occurred_at >= start, Event.occurred_at < end))})
    last = session.scalar(select(Event.id).where(Event.member_pk == member.id, Event.type == "check_in")
                          .order_by(Event.occurred_at.desc()).limit(1))
    streak = db_counters(session, member.id, last or 0, now, tz).streak("check_in") if last else 0
    return {"month": month, "days": days, "streak": streak, "makeup_cards": cards_of(session, member)}
