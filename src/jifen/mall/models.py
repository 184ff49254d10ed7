"""The points mall: rewards, redemption orders and the coupons they issue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow
from jifen.security.pii import EncryptedJSON, address_lookup

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
    per_day_limit: Mapped[int | None] = mapped_column(Integer)  # units per member per programme day
    # Points + cash: an alternative price of fewer points and a cash part (¥, paid at the till or online).
    cash_points: Mapped[int | None] = mapped_column(BigInteger)
    cash: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # A time-limited discount on the points price, in percent.
    discount_pct: Mapped[int] = mapped_column(Integer, default=0)
    discount_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Share of the stock a tier may take ({"normal": 0.2}: 普通 members get 20 % of it); stock_total is the
    # stock the shares are of.
    tier_shares: Mapped[dict] = mapped_column(JSON, default=dict)
    stock_total: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    coupon: Mapped[dict] = mapped_column(JSON, default=dict)  # {"threshold": 50, "discount": 5, "valid_days": 30}
    active: Mapped[bool] = mapped_column(default=True)
    # A honeypot (risk control): never advertised, only scripts find it; whoever redeems it goes to review.
    honeypot: Mapped[bool] = mapped_column(default=False)
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
    cash: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))  # the cash part, if points + cash
    tier: Mapped[str | None] = mapped_column(String(32))  # the member's tier when redeeming (tier shares)
    status: Mapped[str] = mapped_column(String(16), default="held")
    hold_id: Mapped[int] = mapped_column(BigInteger)
    # A campaign's double-value redemption days: the campaign's code, the points its offer saved on the
    # order (counted against its budget, returned on cancel or refund) and the sponsor's part of them.
    campaign: Mapped[str | None] = mapped_column(String(48))
    points_saved: Mapped[int] = mapped_column(BigInteger, default=0)
    sponsored: Mapped[int] = mapped_column(BigInteger, default=0)
    # Risk control's verdict when the order was placed: {"score", "action", "reasons", "case_id"}.
    risk: Mapped[dict] = mapped_column(JSON, default=dict)
    # The delivery address, encrypted at rest ({"pooled": pool id} for a pool's order); address_hash is
    # the keyed hash of its normalised locating parts (security/pii.py), kept in step by the listener below,
    # so risk control can group orders by address without decrypting.
    address: Mapped[dict] = mapped_column(EncryptedJSON(), default=dict)
    address_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


@event.listens_for(Redemption.address, "set")
def _hash_address(target: Redemption, value, _old, _initiator) -> None:
    target.address_hash = address_lookup(value)


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (Index("ix_coupons_used", "program_id", "used_at"),)  # the write-off log, newest first

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
    used_by: Mapped[str | None] = mapped_column(String(200))  # the actor who wrote it off (Principal.actor)


class LotteryPool(Base):
    """A lottery or blind box: a cost in points per draw and a weighted pool of prizes."""

    __tablename__ = "lottery_pools"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    cost: Mapped[int] = mapped_column(BigInteger)  # points per draw
    budget: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # ¥ of prizes the pool may give away
    spent: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))
    active: Mapped[bool] = mapped_column(default=True)


class LotteryPrize(Base):
    __tablename__ = "lottery_prizes"

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("lottery_pools.id"))
    name: Mapped[str] = mapped_column(String(200))
    weight: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)  # None: unlimited
    points: Mapped[int] = mapped_column(BigInteger, default=0)  # points credited when won
    value: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))  # ¥ counted against the budget


class LotteryDraw(Base):
    """Each draw with the random number used and the prizes it could win, so it can be replayed."""

    __tablename__ = "lottery_draws"
    __table_args__ = (Index("ix_draws_pool", "pool_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("lottery_pools.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    random: Mapped[str] = mapped_column(String(32))  # the draw's uniform number in [0, 1), as a decimal string
    candidates: Mapped[list] = mapped_column(JSON)  # [[prize id, weight], …] in force for this draw
    prize_id: Mapped[int] = mapped_column(ForeignKey("lottery_prizes.id"))
    cost_entry_id: Mapped[int] = mapped_column(BigInteger)
    award_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Partner(Base):
    """A partner programme points convert to and from (airline miles, bank points) at fixed rates."""

    __tablename__ = "partners"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(32))  # 里程, 積分 …
    points_per_unit_out: Mapped[int | None] = mapped_column(Integer)  # our points for one partner unit
    points_per_unit_in: Mapped[int | None] = mapped_column(Integer)  # our points one partner unit brings
    min_units: Mapped[int] = mapped_column(Integer, default=1)
    max_units_per_day: Mapped[int | None] = mapped_column(Integer)  # per member and direction


class PartnerExchange(Base):
    __tablename__ = "partner_exchanges"
    __table_args__ = (UniqueConstraint("partner_id", "reference"), Index("ix_exchanges_partner_time", "partner_id",
                                                                          "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    direction: Mapped[str] = mapped_column(String(4))  # out: our points → partner units; in: the reverse
    units: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(100))  # the partner's transaction id (or ours)
    entry_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
