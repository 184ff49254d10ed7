"""Partner exchange: our points out to a partner programme or partner units in, at the partner's fixed
rates, with a minimum and a daily limit per member; one ledger entry per exchange and a reconciliation
report per partner and period (the file both sides compare)."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.db import by_code
from jifen.errors import Conflict, InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.mall.models import Partner, PartnerExchange
from jifen.members.models import Member
from jifen.risk.restrictions import ensure_unrestricted


def get_partner(session: Session, program_id: int, code: str) -> Partner:
    return by_code(session, Partner, program_id, code, "partner")


@ops.atomic
def exchange(sc: ops.Scope, member: Member, partner: Partner, direction: str, units: int,
             reference: str) -> PartnerExchange:
    rate = partner.points_per_unit_out if direction == "out" else partner.points_per_unit_in
    if direction not in ("out", "in") or not rate:
        raise InvalidRequest(f"{partner.name} does not take exchanges {direction}", code="exchange_closed")
    if units < partner.min_units:
        raise InvalidRequest(f"at least {partner.min_units} {partner.unit} per exchange", code="below_minimum")
    s = sc.session
    lock_members(s, [member.id])
    if s.scalar(select(PartnerExchange.id).where(PartnerExchange.partner_id == partner.id,
                                                 PartnerExchange.reference == reference)):
        raise Conflict(f"exchange {reference!r} with {partner.name} was already made", code="duplicate_reference")
    if partner.max_units_per_day is not None:
        since = sc.now - dt.timedelta(days=1)
        today = cast(int, s.scalar(select(func.coalesce(func.sum(PartnerExchange.units), 0)).where(
            PartnerExchange.partner_id == partner.id, PartnerExchange.member_pk == member.id,
            PartnerExchange.direction == direction, PartnerExchange.created_at > since)))
        if today + units > partner.max_units_per_day:
            raise Conflict(f"at most {partner.max_units_per_day} {partner.unit} a day with {partner.name}",
                           code="limit_reached")
    points = units * rate
    why = f"{partner.name}: {units} {partner.unit} ({reference})"
    ensure_unrestricted(sc.session, [member.id], sc.now)
    entry = (ops.spend(sc, member, points, reference=f"partner {partner.code}", reason=why) if direction == "out"
             else ops.award(sc, member, points, reference=f"partner {partner.code}", reason=why))
    record = PartnerExchange(partner_id=partner.id, member_pk=member.id, direction=direction, units=units,
                             points=points, reference=reference, entry_id=entry.id, created_at=sc.now)
    s.add(record)
    s.flush()
    return record


def reconciliation(session: Session, partner: Partner, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Every exchange with the partner in [start, end), oldest first, with running totals per direction."""
    rows, totals = [], {"out": [0, 0], "in": [0, 0]}
    q = (select(PartnerExchange, Member.member_id).join(Member, Member.id == PartnerExchange.member_pk)
         .where(PartnerExchange.partner_id == partner.id, PartnerExchange.created_at >= start,
                PartnerExchange.created_at < end).order_by(PartnerExchange.id))
    for x, member_id in session.execute(q):
        totals[x.direction][0] += x.units
        totals[x.direction][1] += x.points
        rows.append({"reference": x.reference, "at": x.created_at.isoformat(), "member_id": member_id,
                     "direction": x.direction, "units": x.units, "points": x.points, "entry_id": x.entry_id})
    rows += [{"reference": f"TOTAL {d}", "at": "", "member_id": "", "direction": d, "units": u, "points": p,
              "entry_id": ""} for d, (u, p) in totals.items()]
    return rows
