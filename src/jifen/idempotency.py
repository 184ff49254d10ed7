"""Idempotent writes: the first request with a key does the work; a replay returns its stored result;
the same key with a different request is refused. The key is claimed *before* the work, inside the
same transaction (INSERT … ON CONFLICT DO NOTHING): a concurrent duplicate blocks on the claim until
the first commits, then replays its result — the work never runs twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jifen.db import utcnow
from jifen.errors import IdempotencyConflict, InvalidRequest
from jifen.ledger.models import IdempotencyRecord as Record

_FIND = select(Record.operation, Record.request_hash, Record.response).where(
    Record.program_id == bindparam("program"), Record.key == bindparam("key"))
_CLAIM = {d.__name__.rsplit(".", 1)[-1]: d.insert(Record).on_conflict_do_nothing().returning(Record.id)
          for d in (postgresql, sqlite)}
_SAVE = update(Record).where(Record.id == bindparam("record")).values(response=bindparam("response"))


def request_hash(operation: str, payload) -> str:
    raw = json.dumps([operation, payload], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _claim(session: Session, values: dict) -> int | None:
    """Insert the key's record unless it exists; the new record's id, or None if it was taken."""
    return session.execute(_CLAIM[session.get_bind().dialect.name], values).scalar()


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
