"""Automations, their runs, and per run who matched and what was done for them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow


class Automation(Base):
    __tablename__ = "automations"
    __table_args__ = (UniqueConstraint("program_id", "code"), Index("ix_automations_due", "active", "next_run_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule or event
    every: Mapped[str | None] = mapped_column(String(8))  # schedule: hour, day or week
    event_type: Mapped[str | None] = mapped_column(String(32))  # event: members with such events since the last run
    event_mark: Mapped[int] = mapped_column(BigInteger, default=0)  # the last event id an event trigger has seen
    condition: Mapped[str] = mapped_column(String(4096))  # CEL over `member` (automations/facts.py)
    actions: Mapped[list] = mapped_column(JSON)
    # How often one member may be acted upon: once per lapse (their last purchase), once ever, or per day,
    # week or month (programme calendar).
    repeat: Mapped[str] = mapped_column(String(8), default="lapse")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AutomationRun(Base):
    __tablename__ = "automation_runs"
    __table_args__ = (Index("ix_automation_runs_automation", "automation_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    automation_id: Mapped[int] = mapped_column(ForeignKey("automations.id"))
    cause: Mapped[str] = mapped_column(String(16))  # schedule, event or manual
    actor: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    evaluated: Mapped[int] = mapped_column(Integer, default=0)  # members whose facts were checked
    matched: Mapped[int] = mapped_column(Integer, default=0)  # members the condition held for
    acted: Mapped[int] = mapped_column(Integer, default=0)  # members whose actions were carried out now
    repeats: Mapped[int] = mapped_column(Integer, default=0)  # matched, but already acted upon this occurrence
    failed: Mapped[int] = mapped_column(Integer, default=0)  # matched, but an action was refused (nothing done)
    errors: Mapped[list] = mapped_column(JSON, default=list)  # condition errors (first few)


class AutomationAction(Base):
    """One matched member of a run: what was done (or why not)."""

    __tablename__ = "automation_actions"
    __table_args__ = (Index("ix_automation_actions_run", "run_id", "id"),
                      Index("ix_automation_actions_member", "member_pk"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("automation_runs.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    occurrence: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # done, repeat or failed
    done: Mapped[list] = mapped_column(JSON, default=list)  # [{"type": "message", "channels": […]}, …]
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    points: Mapped[int] = mapped_column(BigInteger, default=0)  # awarded (gifts for coupons included)


class AutomationReach(Base):
    """That a member was acted upon for an occurrence (their lapse, a period, ever): claimed before acting, in
    the same transaction, so a re-run or a concurrent run never acts twice. Kept for good (idempotency records
    are purged after their retention; a lapse can last longer)."""

    __tablename__ = "automation_reaches"

    automation_id: Mapped[int] = mapped_column(ForeignKey("automations.id"), primary_key=True)
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    occurrence: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("automation_runs.id"))
    reached_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
