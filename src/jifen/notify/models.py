"""What hangs off the transactional outbox (jifen/outbox.py): deliveries per channel, webhook subscriptions, the
members' in-app inbox, opt-outs and the expiry reminders already sent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow


class Delivery(Base):
    """One message to one recipient on one channel. `id` is the at-least-once id receivers see."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_order", "channel", "target", "order_key", "id"),
        Index("ix_deliveries_message", "message_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("outbox_messages.id"))
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    channel: Mapped[str] = mapped_column(String(16))  # webhook, inapp, email, sms, wechat
    target: Mapped[str] = mapped_column(String(300))  # subscription id, member pk
    order_key: Mapped[str] = mapped_column(String(64), default="")  # same key: delivered in id order
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending sending delivered dead skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    url: Mapped[str] = mapped_column(String(500))
    topics: Mapped[list] = mapped_column(JSON)  # ["points.awarded", …] or ["*"]
    secret: Mapped[str] = mapped_column(String(100))  # whsec_…: Standard Webhooks signing secret
    # After a rotation the old secret signs too, until `previous_until`, so receivers can switch over.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InboxItem(Base):
    __tablename__ = "inbox_items"
    __table_args__ = (UniqueConstraint("member_pk", "delivery_id"), Index("ix_inbox_member", "member_pk", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    topic: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class OptOut(Base):
    __tablename__ = "notification_opt_outs"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExpiryReminder(Base):
    """One reminder per member, expiry day and stage (3 months, 1 month ahead): never sent twice."""

    __tablename__ = "expiry_reminders"

    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    expires_on: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    stage: Mapped[str] = mapped_column(String(8), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
