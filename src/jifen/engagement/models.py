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
