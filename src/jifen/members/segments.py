"""Segments a member belongs to (RFM's, or a brand's own), kept in `attributes.segments`, which rules
read as `member.segments`."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from jifen.members.models import Member


def store(session: Session, segments: dict[int, str], family: Iterable[str]) -> int:
    """Give each member (by pk) its segment in place of any earlier one of the same family (e.g. RFM's);
    a member's other segments stay. Returns how many members were written."""
    family = set(family)
    found = session.execute(select(Member.id, Member.attributes).where(Member.id.in_(list(segments)))).all()
    current: dict[int, dict | None] = {pk: attrs for pk, attrs in found}
    rows = []
    for pk, segment in segments.items():
        attrs = dict(current[pk] or {})
        attrs["segments"] = [s for s in attrs.get("segments", []) if s not in family] + [segment]
        rows.append({"pk": pk, "attrs": attrs})
    return _write(session, rows)


def drop(session: Session, pks: Iterable[int], segment: str) -> int:
    """Take one segment away from these members (an uploaded list replaced by a new one)."""
    found = session.execute(select(Member.id, Member.attributes).where(Member.id.in_(list(pks)))).all()
    rows = [{"pk": pk, "attrs": {**(attrs or {}), "segments": [s for s in (attrs or {}).get("segments", []) if s != segment]}}
            for pk, attrs in found]
    return _write(session, rows)


def _write(session: Session, rows: list[dict]) -> int:
    if rows:
        session.connection().execute(update(Member).where(Member.id == bindparam("pk"))
                                     .values(attributes=bindparam("attrs")), rows)
    return len(rows)
