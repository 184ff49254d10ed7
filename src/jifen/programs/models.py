"""Programmes and their point currencies (wallets)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, UniqueConstraint
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
    # Rolling validity of awarded points; None = never expire.
    expiry_months: Mapped[int | None] = mapped_column(Integer, default=24)
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
