"""What risk control remembers: which members were seen on which device or IP address."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from jifen.db import Base, UTCDateTime, utcnow


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
