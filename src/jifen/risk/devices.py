"""The account graph's edges: which members were seen on which device and IP address. A batch of
sightings is one INSERT … ON CONFLICT DO UPDATE (SQLite and PostgreSQL alike); the counts scoring needs
are one grouped query."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session

from jifen.db import among
from jifen.risk.models import MemberDevice
from jifen.rows import merge_rows


def sightings_of(attributes: dict | None, device: str | None = None, ip: str | None = None) -> list[tuple[str, str]]:
    """(kind, value) pairs an event's attributes (or a redemption's fields) carry."""
    attributes = attributes or {}
    out = []
    for kind, value in (("device", device or attributes.get("device_id")), ("ip", ip or attributes.get("ip"))):
        if isinstance(value, str | int) and str(value).strip():
            out.append((kind, str(value).strip()[:128]))
    return out


def record(session: Session, program_id: int, seen: list[tuple[int, str, str, dt.datetime]]) -> None:
    """Upsert (member pk, kind, value, when) sightings: first_seen kept, last_seen and the count moved on."""
    rows: dict[tuple, dict] = {}
    for member_pk, kind, value, at in seen:
        key = (kind, value, member_pk)
        if key in rows:
            row = rows[key]
            row["seen"] += 1
            row["first_seen"], row["last_seen"] = min(row["first_seen"], at), max(row["last_seen"], at)
        else:
            rows[key] = {"program_id": program_id, "kind": kind, "value": value, "member_pk": member_pk,
                         "first_seen": at, "last_seen": at, "seen": 1}
    if not rows:
        return
    greatest = "max" if session.get_bind().dialect.name == "sqlite" else "greatest"
    merge_rows(session, MemberDevice, sorted(rows.values(), key=lambda r: (r["kind"], r["value"], r["member_pk"])),
               key=("program_id", "kind", "value", "member_pk"),
               merge={"last_seen": greatest + "({old}.last_seen, {new}.last_seen)", "seen": "{old}.seen + {new}.seen"})


_CROWD = select(MemberDevice.kind, MemberDevice.value, func.count()).where(
    MemberDevice.program_id == bindparam("program"),
    ((MemberDevice.kind == "device") & among(MemberDevice.value, "devices"))
    | ((MemberDevice.kind == "ip") & among(MemberDevice.value, "ips"))).group_by(MemberDevice.kind, MemberDevice.value)


def accounts_on(session: Session, program_id: int, pairs) -> dict[tuple[str, str], int]:
    """{(kind, value): distinct members seen on it} for these devices / addresses (one query)."""
    by_kind = defaultdict(set)
    for kind, value in pairs:
        by_kind[kind].add(value)
    if not by_kind:
        return {}
    return {(k, v): n for k, v, n in session.execute(_CROWD, {"program": program_id, "devices": sorted(by_kind["device"]),
                                                               "ips": sorted(by_kind["ip"])})}


def busiest(session: Session, program_id: int, member_pks) -> dict[int, tuple[int, int]]:
    """{member pk: (most accounts on any of their devices, on any of their addresses)} (training data)."""
    crowd = (select(MemberDevice.kind, MemberDevice.value, func.count().label("n"))
             .where(MemberDevice.program_id == program_id).group_by(MemberDevice.kind, MemberDevice.value).subquery())
    out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    pks = sorted(set(member_pks))
    for start in range(0, len(pks), 5000):
        for pk, kind, n in session.execute(
                select(MemberDevice.member_pk, MemberDevice.kind, func.max(crowd.c.n))
                .join(crowd, and_(crowd.c.kind == MemberDevice.kind, crowd.c.value == MemberDevice.value))
                .where(MemberDevice.program_id == program_id, MemberDevice.member_pk.in_(pks[start:start + 5000]))
                .group_by(MemberDevice.member_pk, MemberDevice.kind)):
            out[pk][0 if kind == "device" else 1] = n
    return {pk: (v[0], v[1]) for pk, v in out.items()}
