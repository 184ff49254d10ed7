"""Member credit scores: risk and customer service lower them for violators (seed 002), which scales
down what the member earns from then on (rules see `member.credit` too)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from jifen.db import upsert
from jifen.engagement.models import MemberCredit
from jifen.errors import InvalidRequest
from jifen.members.models import Member


def set_credit(session: Session, member: Member, score: int, reason: str, now: dt.datetime) -> dict:
    if not 0 <= score <= 100 or not reason.strip():
        raise InvalidRequest("a score of 0 to 100 and a reason", code="invalid_credit")
    stmt = upsert(session, MemberCredit)
    session.execute(stmt.on_conflict_do_update(index_elements=["member_pk"], set_={
        "score": stmt.excluded.score, "reason": stmt.excluded.reason, "updated_at": stmt.excluded.updated_at}),
        {"member_pk": member.id, "score": score, "reason": reason, "updated_at": now})
    return {"member_id": member.member_id, "score": score, "earn_weight": str(1 if score >= 80 else score / 100)}
