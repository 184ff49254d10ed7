"""Engagement state that is not points: make-up cards for missed check-ins, invite codes and referrals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow


class MakeupCards(Base):
    """補簽卡: a member's cards for checking in on a missed day."""

    __tablename__ = "makeup_cards"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    cards: Mapped[int] = mapped_column(Integer, default=0)


class Referral(Base):
    """Who invited whom (two levels at most: the inviter's own inviter is level 2)."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("invitee_pk"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    inviter_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    invitee_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    code: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InviteCode(Base):
    __tablename__ = "invite_codes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Task(Base):
    """A task or mission: events that count towards it (optionally only those meeting a CEL condition),
    a target (a count of events, or ¥ of their amounts), the points and badge it gives, and the task that
    must be done first (chains: beginner → advanced → hall of honour)."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(8))  # once, daily, weekly
    events: Mapped[list] = mapped_column(JSON)
    condition: Mapped[str] = mapped_column(String(1000), default="true")
    measure: Mapped[str] = mapped_column(String(8), default="count")  # count or amount
    target: Mapped[int] = mapped_column(Integer, default=1)
    points: Mapped[int] = mapped_column(Integer, default=0)
    badge: Mapped[str | None] = mapped_column(String(64))
    requires: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)


class TaskProgress(Base):
    __tablename__ = "task_progress"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)  # all, d:2026-11-23, w:2026-W48
    progress: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Badge(Base):
    __tablename__ = "badges"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_code: Mapped[str | None] = mapped_column(String(64))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RedPacket(Base):
    """紅包: N points split into K shares (random or equal) when sent, each share held on the sender until a
    friend claims it (then given to them) or the packet expires (then returned)."""

    __tablename__ = "red_packets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    sender_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    points: Mapped[int] = mapped_column(Integer)
    shares: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(8))  # random, equal
    message: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default="open")  # open, finished, expired
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RedPacketShare(Base):
    __tablename__ = "red_packet_shares"
    __table_args__ = (UniqueConstraint("packet_id", "claimed_by"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    packet_id: Mapped[int] = mapped_column(ForeignKey("red_packets.id"))
    position: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    hold_id: Mapped[int] = mapped_column(BigInteger)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    transfer_entry_id: Mapped[int | None] = mapped_column(BigInteger)


class AwardBudget(Base):
    """UGC rewards (seed 001): a member granted a budget gives 50–200 points at a time to others, within it."""

    __tablename__ = "award_budgets"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    budget: Mapped[int] = mapped_column(BigInteger, default=0)
    used: Mapped[int] = mapped_column(BigInteger, default=0)


class Team(Base):
    """A team of members (seed 001: three who invited each other team up for +30 % points)."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(16))  # the join code
    name: Mapped[str] = mapped_column(String(100))
    captain_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    goal: Mapped[int] = mapped_column(BigInteger, default=0)  # points the team aims to earn together
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)  # one team at a time
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Friendship(Base):
    """Friends both ways (one row each way)."""

    __tablename__ = "friendships"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    friend_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Pool(Base):
    """Social pooling (seed 002): friends put points together to redeem one reward; each contribution is
    held until the pool is full (then all are captured and the reward is the owner's) or times out."""

    __tablename__ = "pools"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    owner_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    target: Mapped[int] = mapped_column(BigInteger)  # the reward's points price when the pool opened
    status: Mapped[str] = mapped_column(String(12), default="open")  # open, completed, expired, failed
    redemption_id: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PoolContribution(Base):
    __tablename__ = "pool_contributions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    points: Mapped[int] = mapped_column(BigInteger)
    hold_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemberCredit(Base):
    """A member's credit score (100 = clean). Below 80 it scales down what the member earns
    (score ÷ 100): abuse of invitations, sharing or check-ins costs future points, not past ones."""

    __tablename__ = "member_credit"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer, default=100)
    reason: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
