"""Idempotent writes: the first request with a key does the work; a replay returns its stored result;
the same key with a different request is refused. The key is claimed *before* the work, inside the
same transaction, so a concurrent duplicate waits on it and never does the work twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jifen.errors import IdempotencyConflict, InvalidRequest
from jifen.ledger.models import IdempotencyRecord


def request_hash(operation: str, payload) -> str:
    raw = json.dumps([operation, payload], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _replay(record: IdempotencyRecord, digest: str) -> dict:
    if record.request_hash != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {record.key!r} was already used for a different request ({record.operation})"
        )
    return record.response


def idempotent(
    session: Session, program_id: int, key: str, operation: str, payload, work: Callable[[], dict]
) -> tuple[dict, bool]:
    """Returns (result, replayed). `work` runs at most once per key, in the caller's transaction."""
    if not key or len(key) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key")
    digest = request_hash(operation, payload)
    find = select(IdempotencyRecord).where(IdempotencyRecord.program_id == program_id, IdempotencyRecord.key == key)
    existing = session.scalar(find)
    if existing is not None:
        return _replay(existing, digest), True
    record = IdempotencyRecord(program_id=program_id, key=key, operation=operation, request_hash=digest)
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:  # a concurrent request with this key committed first
        return _replay(session.scalars(find.execution_options(populate_existing=True)).one(), digest), True
    result = work()
    record.response = result
    session.flush()
    return result, False
