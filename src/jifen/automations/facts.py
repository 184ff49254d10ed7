"""Member facts an automation's condition reads as `member.…`, for many members at once (a few grouped
queries, no query per member):

id, tier, segments, balance (available points, default wallet), purchases (ever), days_since_purchase (since
the last purchase, or since joining for a member who never bought), days_inactive (since the last event of
any kind, or joining), joined_days, expiring_points (default wallet, within 30 days), last_purchase (the day,
"" when none: what a "lapse" is told apart by)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.events.models import Event
from jifen.ledger.models import AVAILABLE, Account, Lot
from jifen.members.models import Member
from jifen.programs.models import Program, Wallet

EXPIRING_DAYS = 30
SAMPLE = {"id": "M1", "tier": "", "segments": [], "balance": 150, "purchases": 3, "days_since_purchase": 40,
          "days_inactive": 35, "joined_days": 400, "expiring_points": 0, "last_purchase": "2026-01-01"}


def _among(column, pks: Collection[int] | None):
    return column.in_(list(pks)) if pks is not None else True


def member_facts(session: Session, program: Program, now: dt.datetime,
                 pks: Collection[int] | None = None) -> dict[int, dict]:
    """Facts per member pk, for the programme's members (or those of `pks`) who are not erased."""
    tz = ZoneInfo(program.timezone)
    wallet = select(Wallet.id).where(Wallet.program_id == program.id, Wallet.is_default.is_(True)).scalar_subquery()
    members = session.execute(select(Member.id, Member.member_id, Member.tier, Member.attributes, Member.joined_at)
                              .where(Member.program_id == program.id, Member.erased_at.is_(None),
                                     _among(Member.id, pks))).all()
    balance = {pk: b for pk, b in session.execute(select(Account.member_pk, Account.balance).where(
        Account.wallet_id == wallet, Account.kind == AVAILABLE, _among(Account.member_pk, pks)))}
    bought = {pk: (n, last) for pk, n, last in session.execute(
        select(Event.member_pk, func.count(), func.max(Event.occurred_at)).where(
            Event.program_id == program.id, Event.type == "purchase", _among(Event.member_pk, pks))
        .group_by(Event.member_pk))}
    seen = {pk: last for pk, last in session.execute(select(Event.member_pk, func.max(Event.occurred_at)).where(
        Event.program_id == program.id, _among(Event.member_pk, pks)).group_by(Event.member_pk))}
    expiring = {pk: n for pk, n in session.execute(select(Lot.member_pk, func.sum(Lot.available)).where(
        Lot.wallet_id == wallet, Lot.available > 0, Lot.expires_at > now,
        Lot.expires_at <= now + dt.timedelta(days=EXPIRING_DAYS), _among(Lot.member_pk, pks))
        .group_by(Lot.member_pk))}

    def days(since: dt.datetime) -> int:
        return max(0, (now - since).days)

    out = {}
    for pk, member_id, tier, attributes, joined_at in members:
        purchases, last = bought.get(pk, (0, None))
        out[pk] = {"id": member_id, "tier": tier or "", "segments": list((attributes or {}).get("segments") or []),
                   "balance": int(balance.get(pk) or 0), "purchases": int(purchases),
                   "days_since_purchase": days(last or joined_at), "days_inactive": days(seen.get(pk) or joined_at),
                   "joined_days": days(joined_at), "expiring_points": int(expiring.get(pk) or 0),
                   "last_purchase": last.astimezone(tz).date().isoformat() if last else ""}
    return out
