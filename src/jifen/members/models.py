"""Members of a programme, known by the brand's own member id; their consents; the retention purges run."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow
from jifen.security.pii import Encrypted, EncryptedDate, lookup


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("program_id", "member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    member_id: Mapped[str] = mapped_column(String(64))
    # Personal data, encrypted at rest (security/pii.py); phones are found by their keyed hash.
    name: Mapped[str | None] = mapped_column(Encrypted())
    phone: Mapped[str | None] = mapped_column(Encrypted())
    email: Mapped[str | None] = mapped_column(Encrypted())
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    birthday: Mapped[dt.date | None] = mapped_column(EncryptedDate())  # a date in Python, encrypted at rest
    # Current tier; raised in real time, lowered only by the periodic evaluation (jifen.tiers).
    tier: Mapped[str | None] = mapped_column(String(32))
    tier_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Set when an evaluation found the member below their tier: they keep it until then.
    tier_grace_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set by erasure (members/privacy.py): personal data gone, member_id replaced by erased-<random>.
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


@event.listens_for(Member.phone, "set")
def _hash_phone(target: Member, value, _old, _initiator) -> None:
    target.phone_hash = lookup(value)


class Consent(Base):
    """Consent decisions per purpose, append-only: the latest row per (member, purpose) is the current
    state, the rest is the evidence of what was agreed, when, through what and under which policy."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_member_purpose", "member_pk", "purpose", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    member_pk: Mapped[int] = mapped_column(ForeignKey("members.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # app, web, console, api, pos, paper, import, erasure
    policy_version: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))  # "member" (their own token) or the API key / user
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetentionRun(Base):
    """One run of the retention purge (`jifen privacy purge`, daily in the job runner) and what it deleted."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)  # {table: rows deleted}
