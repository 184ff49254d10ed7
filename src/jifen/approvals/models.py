"""Adjustment requests (maker-checker): a manual adjustment above the programme's threshold, waiting for a
second person. Only an approval posts to the ledger, and then once (its entry id is kept here)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow

STATES = ("pending", "approved", "rejected")


class AdjustmentRequest(Base):
    __tablename__ = "adjustment_requests"
    __table_args__ = (Index("ix_adjustment_requests_state", "program_id", "status", "id"),
                      Index("ix_adjustment_requests_member", "member_pk", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    member_pk: Mapped[int] = mapped_column(BigId, ForeignKey("members.id"))
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    points: Mapped[int] = mapped_column(BigInteger)  # signed, as the maker typed it
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, approved, rejected
    maker: Mapped[str] = mapped_column(String(200))  # Principal.actor of who asked
    maker_user_id: Mapped[int | None] = mapped_column(Integer)
    checker: Mapped[str | None] = mapped_column(String(200))  # who approved or rejected
    entry_id: Mapped[int | None] = mapped_column(BigInteger)  # the adjustment an approval posted
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
