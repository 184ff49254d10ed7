"""Programmes and their point currencies (wallets)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from jifen.db import Base, UTCDateTime, utcnow


class Program(Base):
    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # Cost of one point in yuan, for liability (seed 001: 100 points = ¥1).
    point_value: Mapped[Decimal] = mapped_column(Numeric(14, 6), default=Decimal("0.01"))
    point_name: Mapped[str] = mapped_column(String(32), default="積分")
    # Rolling validity of awarded points; None = never expire.
    expiry_months: Mapped[int | None] = mapped_column(Integer, default=24)
    # Round the expiry date up to the end of its month / quarter / year in the programme's timezone
    # ("clear the oldest year every 31 December" = 12 months rounded to the year's end).
    expiry_round: Mapped[str] = mapped_column(String(16), default="none")
    # Days an event type's points stay pending before they can be spent (e.g. a return window).
    pending_days: Mapped[dict] = mapped_column(JSON, default=dict)
    # Tier ladder and qualification (jifen.programs.config.TierConfig as JSON); {} = no tiers.
    tiers: Mapped[dict] = mapped_column(JSON, default=dict)
    # Mall calendar: {"days_of_month": [8, 18, 28], "weekdays": [5], "factor": 2} = rewards cost half then.
    double_value: Mapped[dict] = mapped_column(JSON, default=dict)
    # Risk control (jifen.programs.config.RiskConfig as JSON, only what the document set); {} = defaults.
    risk: Mapped[dict] = mapped_column(JSON, default=dict)
    # Rewards an expiry reminder may suggest ({name, points, value}) until the mall's catalogue exists.
    reminder_rewards: Mapped[list] = mapped_column(JSON, default=list)
    # When the periodic tier evaluation last ran (the job runner runs it once per evaluation period).
    tiers_evaluated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Refund claw-backs may leave a member in debt that later awards pay off first.
    allow_debt: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    wallets: Mapped[list[Wallet]] = relationship(back_populates="program", order_by="Wallet.id")


class Wallet(Base):
    """A point currency of a programme (seed 002: platform points and brand points)."""

    __tablename__ = "wallets"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    program: Mapped[Program] = relationship(back_populates="wallets")
