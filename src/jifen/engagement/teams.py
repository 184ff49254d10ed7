"""Teams: a captain opens a team with a goal, friends join with its code (one team at a time, at most
MAX_SIZE), the team's progress is the points its members earned since it formed, and a board ranks
teams. The team boost itself is a rule: `team_size() >= 3` → multiplier 1.3 (docs/engagement.md)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.engagement.models import Team, TeamMember
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.ledger.engine import lock_members
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.pii import mask

MAX_SIZE = 10
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def team_of(session: Session, member_pk: int) -> Team | None:
    return session.scalar(select(Team).join(TeamMember, TeamMember.team_id == Team.id)
                          .where(TeamMember.member_pk == member_pk))


def size(session: Session, team_id: int) -> int:
    return cast(int, session.scalar(select(func.count()).select_from(TeamMember).where(TeamMember.team_id == team_id)))


def create(session: Session, program: Program, captain: Member, name: str, goal: int, now: dt.datetime) -> Team:
    lock_members(session, [captain.id])
    if team_of(session, captain.id):
        raise Conflict(f"{captain.member_id} is already in a team", code="already_in_team")
    if not 1 <= len(name) <= 100 or goal < 0:
        raise InvalidRequest("a name of 1 to 100 characters and a goal of 0 or more", code="invalid_team")
    team = Team(program_id=program.id, code="".join(secrets.choice(ALPHABET) for _ in range(6)), name=name,
                captain_pk=captain.id, goal=goal, created_at=now)
    session.add(team)
    session.flush()
    session.add(TeamMember(member_pk=captain.id, team_id=team.id, joined_at=now))
    session.flush()
    return team


def get_team(session: Session, program: Program, code: str) -> Team:
    team = session.scalar(select(Team).where(Team.program_id == program.id, Team.code == code.upper()))
    if team is None:
        raise NotFound(f"no team {code!r}", code="unknown_team")
    return team


def join(session: Session, team: Team, member: Member, now: dt.datetime) -> None:
    lock_members(session, [team.captain_pk, member.id])  # joins of one team queue on its captain
    if team_of(session, member.id):
        raise Conflict(f"{member.member_id} is already in a team", code="already_in_team")
    if size(session, team.id) >= MAX_SIZE:
        raise Conflict(f"team {team.code} is full ({MAX_SIZE})", code="team_full")
    session.add(TeamMember(member_pk=member.id, team_id=team.id, joined_at=now))
    session.flush()


def leave(session: Session, team: Team, member: Member) -> None:
    row = session.get(TeamMember, member.id)
    if row is None or row.team_id != team.id:
        raise Conflict(f"{member.member_id} is not in team {team.code}", code="not_in_team")
    if member.id == team.captain_pk and size(session, team.id) > 1:
        raise Conflict("the captain leaves last", code="captain_leaves_last")
    session.delete(row)
    session.flush()


def _earned(program: Program, since: dt.datetime):
    """Points awarded per team since a moment (members count from when they joined)."""
    return (select(TeamMember.team_id, func.coalesce(func.sum(JournalEntry.points), 0).label("points"))
            .join(JournalEntry, (JournalEntry.member_pk == TeamMember.member_pk) & (JournalEntry.type == "award")
                  & (JournalEntry.occurred_at >= TeamMember.joined_at) & (JournalEntry.occurred_at >= since))
            .where(JournalEntry.program_id == program.id).group_by(TeamMember.team_id))


def view(session: Session, program: Program, team: Team) -> dict:
    earned = dict(session.execute(_earned(program, team.created_at).where(TeamMember.team_id == team.id)).all())
    members = session.execute(select(Member.member_id, Member.name).join(TeamMember, TeamMember.member_pk == Member.id)
                              .where(TeamMember.team_id == team.id).order_by(TeamMember.joined_at)).all()
    points = int(earned.get(team.id, 0))
    return {"code": team.code, "name": team.name, "goal": team.goal, "points": points,
            "progress": round(points / team.goal, 4) if team.goal else None,
            "members": [{"member_id": mid, "name": mask(name)} for mid, name in members]}


def board(session: Session, program: Program, since: dt.datetime, limit: int) -> list[dict]:
    earned = _earned(program, since).subquery()
    rows = session.execute(select(Team.code, Team.name, earned.c.points).join(earned, earned.c.team_id == Team.id)
                           .order_by(earned.c.points.desc(), Team.code).limit(limit)).all()
    return [{"rank": i + 1, "team": code, "name": name, "points": int(p)} for i, (code, name, p) in enumerate(rows)]
