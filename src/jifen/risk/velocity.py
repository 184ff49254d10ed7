"""Velocity rules, seed 001's defaults: at most 100 points per member per minute from actions other than
purchases (beyond it the member is flagged: a `risk.alert` in the outbox, delivered to subscribers within seconds), at most 5
redemptions per member per hour (beyond it the order waits in review, points held, until someone
approves or rejects it). Flags never stop a genuine purchase; review never loses an order."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.config import get_settings
from jifen.events.models import Event
from jifen.mall.models import Redemption
from jifen.members.models import Member
from jifen.notify.outbox import emit
from jifen.programs.models import Program


def earned_last_minute(session: Session, member_pk: int, now: dt.datetime) -> int:
    """Points from actions other than purchases in the last minute (what point farms script: check-ins,
    shares, browsing, invitations — a purchase costs money and is often worth more than 100 points)."""
    return session.scalar(select(func.coalesce(func.sum(Event.points), 0)).where(
        Event.member_pk == member_pk, Event.occurred_at > now - dt.timedelta(minutes=1),
        Event.type != "purchase")) or 0


def check_earning(session: Session, program: Program, members: list[Member], now: dt.datetime) -> list[str]:
    """After events: members over the per-minute earning limit get a risk alert; their member ids."""
    limit = get_settings().earn_points_per_minute
    flagged = []
    for m in members:
        points = earned_last_minute(session, m.id, now)
        if points > limit:
            emit(session, program.id, "risk.alert", {"rule": "earn_per_minute", "member_pk": m.id,
                                                     "member_id": m.member_id, "points": int(points), "limit": limit,
                                                     "action": "flag"}, m.id)
            flagged.append(m.member_id)
    return flagged


def redemption_needs_review(session: Session, program: Program, member: Member, now: dt.datetime) -> bool:
    """True (and an alert written) when this order would pass the member's hourly redemption limit."""
    limit = get_settings().redemptions_per_hour
    recent = session.scalar(select(func.count()).select_from(Redemption).where(
        Redemption.member_pk == member.id, Redemption.created_at > now - dt.timedelta(hours=1),
        Redemption.status != "cancelled"))
    if recent < limit:
        return False
    emit(session, program.id, "risk.alert", {"rule": "redemptions_per_hour", "member_pk": member.id,
                                             "member_id": member.member_id, "count": recent + 1, "limit": limit,
                                             "action": "review"}, member.id)
    return True
