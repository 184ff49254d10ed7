"""Events that processed events lead to, sent through the intake in the same transaction:
- an invited member's first purchase → `invite_purchase` for the inviter (referrals);
- a purchase made through a member's share link or post (`attributes.shared_by`) → `share_purchase` for
  that member (content attribution: the buyer's own rules may reward `shared_by` purchases too);
- a group purchase (拼團: `attributes.group_id`, `attributes.group_size`) that completes its group →
  `group_completed` for every member of the group."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.engagement import referrals
from jifen.engagement.models import Referral
from jifen.events.models import Event
from jifen.events.schemas import EventIn
from jifen.members.models import Member
from jifen.programs.models import Program

MAX_GROUP = 20


def follow_ups(session: Session, program: Program, bought: list[tuple[EventIn, Member]]) -> list[EventIn]:
    if not bought:
        return []
    out = []
    invited = set(session.scalars(select(Referral.invitee_pk).where(
        Referral.invitee_pk.in_({m.id for _, m in bought}))))
    for ev, member in bought:
        if member.id in invited and session.scalar(select(func.count()).select_from(Event).where(
                Event.member_pk == member.id, Event.type == "purchase")) == 1:
            out += referrals.first_purchase_events(session, program, member, ev.event_id, ev.occurred_at)
        out += _attribution(session, program, ev, member)
        out += _group(session, program, ev)
    return out


def _attribution(session: Session, program: Program, ev: EventIn, buyer: Member) -> list[EventIn]:
    sharer_id = ev.attributes.get("shared_by")
    if not isinstance(sharer_id, str) or sharer_id == buyer.member_id:
        return []
    if session.scalar(select(Member.id).where(Member.program_id == program.id, Member.member_id == sharer_id)) is None:
        return []
    return [EventIn(event_id=f"share_purchase:{ev.event_id}", member_id=sharer_id, type="share_purchase",
                    occurred_at=ev.occurred_at, amount=ev.amount,
                    attributes={"buyer": buyer.member_id, "order_event": ev.event_id})]


def _group(session: Session, program: Program, ev: EventIn) -> list[EventIn]:
    group, size = ev.attributes.get("group_id"), ev.attributes.get("group_size")
    if not isinstance(group, str) or not isinstance(size, int) or not 2 <= size <= MAX_GROUP:
        return []
    in_group = Event.data["attributes"]["group_id"].as_string() == group
    members = session.execute(select(Member.member_id).join(Event, Event.member_pk == Member.id).where(
        Event.program_id == program.id, Event.type == "purchase", in_group).order_by(Event.id)).scalars().all()
    if len(members) != size:  # the purchase that completes the group, and only that one
        return []
    return [EventIn(event_id=f"group_completed:{group}:{mid}", member_id=mid, type="group_completed",
                    occurred_at=ev.occurred_at, attributes={"group_id": group, "group_size": size})
            for mid in dict.fromkeys(members)]
