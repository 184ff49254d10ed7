"""Members of a programme, known by the brand's own member id."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, ForeignKey, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow
from jifen.security.pii import Encrypted, lookup


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
    birthday: Mapped[dt.date | None] = mapped_column(Date)
    # Current tier; raised in real time, lowered only by the periodic evaluation (jifen.tiers).
    tier: Mapped[str | None] = mapped_column(String(32))
    tier_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Set when an evaluation found the member below their tier: they keep it until then.
    tier_grace_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


@event.listens_for(Member.phone, "set")
def _hash_phone(target: Member, value, _old, _initiator) -> None:
    target.phone_hash = lookup(value)
