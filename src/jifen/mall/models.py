"""The points mall: rewards, redemption orders and the coupons they issue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow

KINDS = ("physical", "coupon", "virtual", "service", "charity", "privilege")


class Reward(Base):
    __tablename__ = "rewards"
    __table_args__ = (UniqueConstraint("program_id", "code"), Index("ix_rewards_category", "program_id", "category"))

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(200), default="")  # up to three levels: 實物/家居/廚具
    points: Mapped[int] = mapped_column(BigInteger)  # price in points per unit
    stock: Mapped[int | None] = mapped_column(Integer)  # units left to sell; None = unlimited
    sold: Mapped[int] = mapped_column(Integer, default=0)  # units redeemed (popularity)
    value: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))  # ¥ shown to members
    cost: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))  # ¥ paid to the supplier
    supplier: Mapped[str | None] = mapped_column(String(100))
    min_tier: Mapped[str | None] = mapped_column(String(32))  # tier-only rewards
    early_access_tier: Mapped[str | None] = mapped_column(String(32))  # this tier and above see it early
    early_access_hours: Mapped[int] = mapped_column(Integer, default=0)  # seed 001: gold 48 h early
    per_member_limit: Mapped[int | None] = mapped_column(Integer)  # units per member, lifetime
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    coupon: Mapped[dict] = mapped_column(JSON, default=dict)  # {"threshold": 50, "discount": 5, "valid_days": 30}
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Redemption(Base):
    """held → fulfilled → refunded, or held → cancelled. Points are held, then captured or released."""

    __tablename__ = "redemptions"
    __table_args__ = (Index("ix_redemptions_member_reward", "member_pk", "reward_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="held")
    hold_id: Mapped[int] = mapped_column(BigInteger)
    address: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Coupon(Base):
    __tablename__ = "coupons"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)  # unguessable: 20 random base-32 chars
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    redemption_id: Mapped[int] = mapped_column(ForeignKey("redemptions.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    status: Mapped[str] = mapped_column(String(12), default="issued")  # issued, used, void
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    merchant: Mapped[str | None] = mapped_column(String(100))
    store: Mapped[str | None] = mapped_column(String(100))
