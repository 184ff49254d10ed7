"""What risk control remembers: which members were seen on which device or IP address."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow


class MemberDevice(Base):
    """One row per (device or IP, member): the account graph's edges. Written when an event or an order
    carries `device_id` / `ip`; read by velocity scoring (accounts on this device) and `jifen risk scan`."""

    __tablename__ = "member_devices"
    __table_args__ = (Index("ix_member_devices_member", "member_pk"),)

    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "device" or "ip"
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    seen: Mapped[int] = mapped_column(Integer, default=1)


class MemberRestriction(Base):
    """A blacklist entry or a freeze: while active (and before `until`), the member can neither earn, spend,
    hold, redeem nor give points. `until` None = permanent; a freeze defaults to 90 days."""

    __tablename__ = "member_restrictions"
    __table_args__ = (Index("ix_member_restrictions_member", "member_pk", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(String(16))  # blacklist | freeze
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | appealed | lifted
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    appeal: Mapped[str | None] = mapped_column(String(2000))
    appealed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(200))
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lift_note: Mapped[str | None] = mapped_column(String(500))


class RiskCase(Base):
    """The review queue: a transaction (or a member) a risk rule sent to review or blocked, and what a
    person decided. Subject kinds: event, redemption, spend (its hold), member."""

    __tablename__ = "risk_cases"
    __table_args__ = (Index("ix_risk_cases_status", "program_id", "status", "id"),
                      Index("ix_risk_cases_subject", "program_id", "subject_kind", "subject_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str | None] = mapped_column(String(128))  # event id, redemption id, hold id; None if blocked
    score: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list] = mapped_column(JSON, default=list)  # [{"code", "points", …}]
    action: Mapped[str] = mapped_column(String(8))  # review | block
    # What a decision acts on, e.g. {"frozen": [[entry_id, lot_id, points], …]} for a reviewed earn.
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | approved | rejected
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision: Mapped[str | None] = mapped_column(String(16))  # approve | reject | freeze_member
    decision_note: Mapped[str | None] = mapped_column(String(1000))


class RiskModel(Base):
    """A trained anomaly model (scikit-learn IsolationForest, joblib bytes): the newest per programme is
    what every process scores with."""

    __tablename__ = "risk_models"
    __table_args__ = (Index("ix_risk_models_program", "program_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    trained_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    n_samples: Mapped[int] = mapped_column(Integer)
    features: Mapped[list] = mapped_column(JSON)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    model: Mapped[bytes] = mapped_column(LargeBinary)


class RiskScan(Base):
    """When the account graph was last scanned (the job runner scans each programme hourly)."""

    __tablename__ = "risk_scans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    findings: Mapped[int] = mapped_column(Integer)
    cases_opened: Mapped[int] = mapped_column(Integer)
