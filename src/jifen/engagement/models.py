"""Engagement state that is not points: make-up cards for missed check-ins, invite codes and referrals."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
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
