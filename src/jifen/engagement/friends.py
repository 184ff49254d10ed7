"""Friends: the list, what friends did lately (a feed from their events), and a weekly board among them."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.engagement.leaderboard import period_since
from jifen.engagement.models import Friendship
from jifen.errors import Conflict
from jifen.events.models import Event
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.pii import mask

MAX_FRIENDS = 500


def befriend(session: Session, member: Member, friend: Member, now: dt.datetime) -> None:
    if member.id == friend.id:
        raise Conflict("a member cannot befriend themselves", code="self_friend")
    if session.get(Friendship, (member.id, friend.id)):
        raise Conflict(f"{friend.member_id} is already a friend", code="already_friends")
    if cast(int, session.scalar(select(func.count()).select_from(Friendship).where(Friendship.member_pk == member.id))) \
            >= MAX_FRIENDS:
        raise Conflict(f"at most {MAX_FRIENDS} friends", code="limit_reached")
    session.add_all([Friendship(member_pk=member.id, friend_pk=friend.id, created_at=now),
                     Friendship(member_pk=friend.id, friend_pk=member.id, created_at=now)])
    session.flush()


def friend_ids(session: Session, member: Member) -> list[int]:
    return list(session.scalars(select(Friendship.friend_pk).where(Friendship.member_pk == member.id)))


def friends(session: Session, member: Member) -> list[dict]:
    rows = session.execute(select(Member.member_id, Member.name).where(Member.id.in_(friend_ids(session, member)))
                           .order_by(Member.member_id))
    return [{"member_id": mid, "name": mask(name)} for mid, name in rows]  # other members see 王*


def feed(session: Session, member: Member, limit: int) -> list[dict]:
    """Friends' latest events (what they bought, checked in, earned), newest first."""
    rows = session.execute(select(Event, Member.member_id).join(Member, Member.id == Event.member_pk)
                           .where(Event.member_pk.in_(friend_ids(session, member)))
                           .order_by(Event.occurred_at.desc(), Event.id.desc()).limit(limit))
    return [{"member_id": mid, "type": e.type, "points": e.points, "occurred_at": e.occurred_at.isoformat()}
            for e, mid in rows]


def board(session: Session, program: Program, member: Member, now: dt.datetime) -> list[dict]:
    """This week's points of the member and their friends, ranked."""
    since = period_since(program, "week", now)
    pks = [member.id, *friend_ids(session, member)]
    earned = dict(session.execute(select(JournalEntry.member_pk, func.sum(JournalEntry.points)).where(
        JournalEntry.member_pk.in_(pks), JournalEntry.type == "award", JournalEntry.occurred_at >= since)
        .group_by(JournalEntry.member_pk)).all())
    names = dict(session.execute(select(Member.id, Member.member_id).where(Member.id.in_(pks))).all())
    ranked = sorted(pks, key=lambda pk: (-int(earned.get(pk, 0)), names[pk]))
    return [{"rank": i + 1, "member_id": names[pk], "points": int(earned.get(pk, 0)), "me": pk == member.id}
            for i, pk in enumerate(ranked)]
