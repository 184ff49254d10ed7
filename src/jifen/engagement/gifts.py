"""Gifts between friends (the giver's own points, with daily limits) and UGC awards (points the
programme pays out of a budget granted to a member — a creator rewarding helpful posts)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from jifen.db import upsert
from jifen.engagement.models import AwardBudget
from jifen.errors import Conflict, InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.risk.restrictions import ensure_unrestricted

GIFTS_PER_DAY, GIFT_POINTS_PER_DAY = 10, 2_000
UGC_MIN, UGC_MAX = 50, 200
GIFT = "gift"


@ops.atomic
def gift(sc: ops.Scope, giver: Member, friend: Member, points: int, message: str = ""):
    """The giver's points to a friend (their expiry dates travel along), within the daily limits."""
    lock_members(sc.session, [giver.id, friend.id])
    count, total = sc.session.execute(select(func.count(), func.coalesce(func.sum(JournalEntry.points), 0)).where(
        JournalEntry.type == "transfer", JournalEntry.member_pk == giver.id, JournalEntry.reference == GIFT,
        JournalEntry.recorded_at > sc.now - dt.timedelta(days=1))).one()
    if count >= GIFTS_PER_DAY or total + points > GIFT_POINTS_PER_DAY:
        raise Conflict(f"at most {GIFTS_PER_DAY} gifts and {GIFT_POINTS_PER_DAY} points a day",
                       code="limit_reached")
    ensure_unrestricted(sc.session, [giver.id, friend.id], sc.now)
    return ops.transfer(sc, giver, friend, points, reference=GIFT, reason=message or "好友贈送積分")


def grant_budget(session: Session, member: Member, points: int) -> dict:
    if not 1 <= points <= 1_000_000:
        raise InvalidRequest("a budget of 1 to 1,000,000 points", code="invalid_budget")
    stmt = upsert(session, AwardBudget)
    session.execute(stmt.on_conflict_do_update(index_elements=["member_pk"],
                                               set_={"budget": AwardBudget.budget + stmt.excluded.budget}),
                    {"member_pk": member.id, "budget": points, "used": 0})
    row = session.get_one(AwardBudget, member.id)
    session.refresh(row)
    return {"budget": row.budget, "used": row.used, "left": row.budget - row.used}


@ops.atomic
def ugc_award(sc: ops.Scope, creator: Member, to: Member, points: int, reason: str):
    if not UGC_MIN <= points <= UGC_MAX:
        raise InvalidRequest(f"an award is {UGC_MIN} to {UGC_MAX} points", code="invalid_points")
    if creator.id == to.id:
        raise Conflict("a creator cannot award themselves", code="self_award")
    taken = cast(CursorResult[Any], sc.session.execute(update(AwardBudget).where(
        AwardBudget.member_pk == creator.id, AwardBudget.used + points <= AwardBudget.budget)
        .values(used=AwardBudget.used + points))).rowcount  # a conditional update: two awards at once cannot overdraw
    if not taken:
        raise Conflict(f"{creator.member_id}'s award budget does not cover {points} points", code="budget_exhausted")
    ensure_unrestricted(sc.session, [to.id], sc.now)
    return ops.award(sc, to, points, reference=f"ugc:{creator.member_id}", reason=reason)
