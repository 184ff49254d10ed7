"""Referrals: invite codes, the invitee's registration and first purchase rewarded through the rules,
two levels at most, no self-referral, the first-purchase reward taken back if that order is refunded.

The points are the rules' business (event types `invite` — the inviter, with `attributes.invitee` and
`attributes.level` 1 or 2 — `invited` for the invitee, and `invite_purchase` for the inviter when the
invitee first buys), so caps per inviter, budgets and campaigns apply as to any rule."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.engagement.models import InviteCode, Referral
from jifen.errors import Conflict, NotFound
from jifen.events.schemas import EventIn
from jifen.ledger.engine import lock_members
from jifen.members.models import Member
from jifen.programs.models import Program

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
INVITES_PER_DAY = 5  # seed 002: at most five invitations per member per day


def invite_code(session: Session, program: Program, member: Member, now: dt.datetime) -> str:
    code = session.scalar(select(InviteCode.code).where(InviteCode.member_pk == member.id))
    if code is None:
        code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        session.add(InviteCode(code=code, program_id=program.id, member_pk=member.id, created_at=now))
        session.flush()
    return code


def inviter_of(session: Session, member_pk: int) -> int | None:
    return session.scalar(select(Referral.inviter_pk).where(Referral.invitee_pk == member_pk))


def accept(session: Session, program: Program, invitee: Member, code: str, now: dt.datetime) -> list[EventIn]:
    """Record who invited the new member; the events that reward it (send them through the intake)."""
    owner = session.scalar(select(InviteCode.member_pk).where(InviteCode.code == code.upper(),
                                                              InviteCode.program_id == program.id))
    if owner is None:
        raise NotFound(f"unknown invite code {code!r}", code="unknown_invite_code")
    if owner == invitee.id:
        raise Conflict("a member cannot invite themselves", code="self_referral")
    lock_members(session, sorted({owner, invitee.id}))  # two codes at once for one member: one wins
    if cast(int, session.scalar(select(func.count()).select_from(Referral).where(
            Referral.inviter_pk == owner, Referral.created_at > now - dt.timedelta(days=1)))) >= INVITES_PER_DAY:
        raise Conflict(f"at most {INVITES_PER_DAY} invitations a day", code="limit_reached")
    if inviter_of(session, invitee.id) is not None:
        raise Conflict(f"{invitee.member_id} was already invited", code="already_referred")
    session.add(Referral(program_id=program.id, inviter_pk=owner, invitee_pk=invitee.id, code=code.upper(),
                         created_at=now))
    session.flush()
    members = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(
        [owner, inviter_of(session, owner) or owner])))}
    events = [EventIn(event_id=f"invite:{invitee.member_id}", member_id=members[owner].member_id, type="invite",
                      occurred_at=now, attributes={"invitee": invitee.member_id, "level": 1}),
              EventIn(event_id=f"invited:{invitee.member_id}", member_id=invitee.member_id, type="invited",
                      occurred_at=now, attributes={"inviter": members[owner].member_id})]
    second = inviter_of(session, owner)
    if second is not None and second != invitee.id:
        events.append(EventIn(event_id=f"invite2:{invitee.member_id}", member_id=members[second].member_id,
                              type="invite", occurred_at=now, attributes={"invitee": invitee.member_id, "level": 2}))
    return events


def first_purchase_events(session: Session, program: Program, member: Member, purchase_event_id: str,
                          occurred_at: dt.datetime) -> list[EventIn]:
    """When an invited member's first order arrives: the event that rewards their inviter."""
    inviter = inviter_of(session, member.id)
    if inviter is None:
        return []
    owner = session.get_one(Member, inviter)
    return [EventIn(event_id=f"invite_purchase:{purchase_event_id}", member_id=owner.member_id,
                    type="invite_purchase", occurred_at=occurred_at,
                    attributes={"invitee": member.member_id, "order_event": purchase_event_id})]
