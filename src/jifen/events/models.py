"""Member events as received, with what the rules made of them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("program_id", "event_id"),
        Index("ix_events_member_type_time", "member_pk", "type", "occurred_at"),
        Index("ix_events_order", "program_id", "order_id"),
        Index("ix_events_program_time", "program_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    event_id: Mapped[str] = mapped_column(String(128))  # the sender's id: the idempotency key
    request_hash: Mapped[str] = mapped_column(String(64))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    type: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    order_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict] = mapped_column(JSON, default=dict)  # lines and free attributes
    # Outcome: rule version used, points per rule and wallet, ledger entries written.
    rule_version: Mapped[int | None] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    # For purchases: how much of the order has been refunded, and the points taken back so far.
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    points_reversed: Mapped[int] = mapped_column(BigInteger, default=0)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
