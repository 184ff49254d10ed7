"""Campaigns, experiments and bandits. A campaign's earning effect lives in the rules (a campaign-layer
rule it publishes); these tables hold what the operator set and what the reports need to judge it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, UTCDateTime, utcnow


class Campaign(Base):
    """status: draft → live (its rule published) → ended (its rule withdrawn). The rule's code and its
    budget's name are `campaign_<code>`."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("program_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(48))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    audience: Mapped[dict] = mapped_column(JSON)  # jifen.rules.audience.Audience
    effect: Mapped[dict] = mapped_column(JSON)  # jifen.campaigns.schemas.Effect
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    budget: Mapped[int] = mapped_column(BigInteger)  # points; the hard stop
    sponsor: Mapped[str | None] = mapped_column(String(100))
    sponsor_share: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Experiment(Base):
    """An A/B/n test: members of the audience's target are put in an arm (or the holdout) by a stable hash
    of the experiment key and their id; results compare each arm with the first over [starts_at, ends_at)."""

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    key: Mapped[str] = mapped_column(String(48))
    name: Mapped[str] = mapped_column(String(200))
    arms: Mapped[list] = mapped_column(JSON)  # [{"name", "weight"}], the first is the control
    audience: Mapped[dict] = mapped_column(JSON)
    metric: Mapped[str] = mapped_column(String(16))  # the primary one: conversion, spend or redemption
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BanditArm(Base):
    """One offer of a multi-armed bandit (Thompson sampling, Beta(1 + rewards, 1 + pulls − rewards))."""

    __tablename__ = "bandit_arms"

    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    bandit: Mapped[str] = mapped_column(String(48), primary_key=True)
    arm: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    pulls: Mapped[int] = mapped_column(BigInteger, default=0)
    rewards: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
