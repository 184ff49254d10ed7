"""Blacklists and freezes. A restriction is in force while it is active or under appeal and its `until`
(if any) has not passed; an expired time-limited restriction no longer applies, nothing needs to run.

Enforcement is in one place: `ensure_unrestricted`, called by the ledger operations that move points to
or from a member of their own will (award, spend, hold, transfer, and the bulk award of the intake), and
by the risk scorer, which refuses a restricted member's events one by one in a batch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.db import among
from jifen.errors import Conflict, Forbidden, InvalidRequest, NotFound
from jifen.members.models import Member
from jifen.risk.models import MemberRestriction

KINDS = ("blacklist", "freeze")
IN_FORCE = ("active", "appealed")  # an appeal does not lift anything until someone decides

_IN_FORCE = MemberRestriction.status.in_(IN_FORCE) & (
    MemberRestriction.until.is_(None) | (MemberRestriction.until > bindparam("now")))
_RECENT = MemberRestriction.created_at > bindparam("since")
_ACTIVE = select(MemberRestriction.member_pk, MemberRestriction.id).where(
    among(MemberRestriction.member_pk, "members"), _IN_FORCE)
_STANDING = select(MemberRestriction.member_pk, MemberRestriction.id, _IN_FORCE, _RECENT).where(
    among(MemberRestriction.member_pk, "members"), _IN_FORCE | _RECENT)


def restricted(session: Session, member_pks, now: dt.datetime) -> dict[int, int]:
    """{member pk: restriction id} of the members under a restriction now (one query)."""
    pks = sorted(set(member_pks))
    if not pks:
        return {}
    return {pk: rid for pk, rid in session.execute(_ACTIVE, {"members": pks, "now": now})}


def standing(session: Session, member_pks, now: dt.datetime, days: int = 365) -> tuple[dict[int, int], set[int]]:
    """`restricted`'s answer, and the members restricted at some time in the last `days` (whether or not still
    in force), in one query (risk scoring asks both for every batch)."""
    pks = sorted(set(member_pks))
    if not pks:
        return {}, set()
    rows = session.execute(_STANDING, {"members": pks, "now": now, "since": now - dt.timedelta(days=days)}).all()
    return {pk: rid for pk, rid, in_force, _ in rows if in_force}, {pk for pk, _, _, recent in rows if recent}


def refusal(member_id: str | None = None) -> Forbidden:
    who = f"member {member_id!r}" if member_id else "the member"
    return Forbidden(f"{who} is blacklisted or frozen: no points can be earned, spent or given",
                     code="member_restricted")


def ensure_unrestricted(session: Session, member_pks, now: dt.datetime) -> None:
    """403 member_restricted when any of the members is under a restriction."""
    found = restricted(session, member_pks, now)
    if found:
        raise refusal(session.get_one(Member, min(found)).member_id)


def get(session: Session, program_id: int, restriction_id: int) -> MemberRestriction:
    r = session.get(MemberRestriction, restriction_id)
    if r is None or r.program_id != program_id:
        raise NotFound(f"no restriction {restriction_id}", code="unknown_restriction")
    return r


def impose(session: Session, member: Member, kind: str, *, days: int | None, reason: str, actor: str | None,
           now: dt.datetime) -> MemberRestriction:
    """Blacklist or freeze a member, permanently (days None) or for `days`."""
    if kind not in KINDS:
        raise InvalidRequest(f"kind is one of {', '.join(KINDS)}", code="invalid_restriction")
    if not (reason or "").strip():
        raise InvalidRequest("a restriction needs a reason", code="reason_required")
    r = MemberRestriction(program_id=member.program_id, member_pk=member.id, kind=kind, reason=reason.strip(),
                          until=now + dt.timedelta(days=days) if days else None, status="active",
                          created_by=actor, created_at=now)
    session.add(r)
    session.flush()
    return r


def appeal(r: MemberRestriction, text: str, now: dt.datetime) -> MemberRestriction:
    if not (text or "").strip():
        raise InvalidRequest("an appeal needs a text", code="reason_required")
    if r.status != "active":
        raise Conflict(f"restriction {r.id} is {r.status}: it cannot be appealed", code="illegal_transition")
    r.status, r.appeal, r.appealed_at = "appealed", text.strip(), now
    return r


def lift(r: MemberRestriction, note: str, actor: str | None, now: dt.datetime) -> MemberRestriction:
    if not (note or "").strip():
        raise InvalidRequest("lifting a restriction needs a reason", code="reason_required")
    if r.status == "lifted":
        raise Conflict(f"restriction {r.id} was already lifted", code="illegal_transition")
    r.status, r.lifted_by, r.lifted_at, r.lift_note = "lifted", actor, now, note.strip()
    return r


def view(r: MemberRestriction, member_id: str, now: dt.datetime) -> dict:
    in_force = r.status in IN_FORCE and (r.until is None or r.until > now)
    return {"id": r.id, "member_id": member_id, "kind": r.kind, "until": r.until.isoformat() if r.until else None,
            "permanent": r.until is None, "reason": r.reason, "status": r.status, "in_force": in_force,
            "created_by": r.created_by, "created_at": r.created_at.isoformat(), "appeal": r.appeal,
            "appealed_at": r.appealed_at.isoformat() if r.appealed_at else None, "lifted_by": r.lifted_by,
            "lifted_at": r.lifted_at.isoformat() if r.lifted_at else None, "lift_note": r.lift_note}
