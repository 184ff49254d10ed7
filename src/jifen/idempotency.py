"""Idempotent writes: the first request with a key does the work; a replay returns its stored result;
the same key with a different request is refused. The key is claimed *before* the work, inside the
same transaction (INSERT … ON CONFLICT DO NOTHING): a concurrent duplicate blocks on the claim until
the first commits, then replays its result — the work never runs twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, bindparam, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from jifen.db import Base, BigId, UTCDateTime, upsert, utcnow
from jifen.errors import IdempotencyConflict, InvalidRequest
from jifen.security.pii import EncryptedJSON


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("program_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    key: Mapped[str] = mapped_column(String(255))
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    # The first answer, replayed; encrypted at rest: it may repeat personal data (an order's address).
    response: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


_FIND = select(IdempotencyRecord.operation, IdempotencyRecord.request_hash, IdempotencyRecord.response).where(
    IdempotencyRecord.program_id == bindparam("program"), IdempotencyRecord.key == bindparam("key"))
_SAVE = update(IdempotencyRecord).where(IdempotencyRecord.id == bindparam("record")).values(response=bindparam("response"))


def request_hash(operation: str, payload) -> str:
    raw = json.dumps([operation, payload], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _claim(session: Session, values: dict) -> int | None:
    """Insert the key's record unless it exists; the new record's id, or None if it was taken."""
    claim = upsert(session, IdempotencyRecord).on_conflict_do_nothing().returning(IdempotencyRecord.id)
    return session.execute(claim, values).scalar()


def idempotent(
    session: Session, program_id: int, key: str, operation: str, payload, work: Callable[[], dict]
) -> tuple[dict, bool]:
    """Returns (result, replayed). `work` runs at most once per key, in the caller's transaction."""
    if not key or len(key) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key")
    digest = request_hash(operation, payload)
    record_id = _claim(session, {"program_id": program_id, "key": key, "operation": operation[:64],
                                 "request_hash": digest, "created_at": utcnow()})
    if record_id is None:
        found = session.execute(_FIND, {"program": program_id, "key": key}).one()
        if found.request_hash != digest:
            raise IdempotencyConflict(
                f"Idempotency-Key {key!r} was already used for a different request ({found.operation})")
        return found.response, True
    result = work()
    session.execute(_SAVE, {"record": record_id, "response": result})
    return result, False
