"""Versioned rule sets and the usage counters behind caps and budgets."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, UTCDateTime, utcnow


class RuleSet(Base):
    """One version of a programme's earning rules. Versions are never edited: a change is a new
    version with its own effective date, so any past event can be explained by the rules then in force."""

    __tablename__ = "rule_sets"
    __table_args__ = (UniqueConstraint("program_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    document: Mapped[dict] = mapped_column(JSON)  # jifen.rules.schema.RuleSetDoc
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RuleUsage(Base):
    """Points already granted under a cap or budget: per member (member_pk) or programme-wide
    (member_pk 0), per period ('d:2026-11-11', 'w:2026-W46', 'm:2026-11', 'all')."""

    __tablename__ = "rule_usage"

    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_pk: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
