"""What the member page shows beside balances and entries: the lots points live in (with their expiry and
the entry that made each) and the member's restrictions not yet lifted."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.ledger.models import Lot
from jifen.members.models import Member
from jifen.risk import restrictions
from jifen.risk.models import MemberRestriction

LOTS_SHOWN = 50


def member_lots(session: Session, member: Member) -> list[Lot]:
    """Lots still holding points, the soonest to expire first (those that never expire last)."""
    left = Lot.available + Lot.pending + Lot.held + Lot.frozen
    return list(session.scalars(select(Lot).where(Lot.member_pk == member.id, left > 0)
                                .order_by(Lot.expires_at.is_(None), Lot.expires_at, Lot.id).limit(LOTS_SHOWN)))


def member_restrictions(session: Session, member: Member, now: dt.datetime) -> list[dict]:
    rows = session.scalars(select(MemberRestriction).where(MemberRestriction.member_pk == member.id,
                                                           MemberRestriction.status != "lifted")
                           .order_by(MemberRestriction.id.desc()))
    return [v for v in (restrictions.view(r, member.member_id, now) for r in rows) if v["in_force"]]
