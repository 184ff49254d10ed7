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

from jifen.db import Base, BigId, UTCDateTime, among, upsert, utcnow
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


def _check_key(key: str) -> None:
    if not key or len(key) > 255:
        raise InvalidRequest("Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key")


_FIND_MANY = select(IdempotencyRecord.key, IdempotencyRecord.operation, IdempotencyRecord.request_hash,
                    IdempotencyRecord.response).where(IdempotencyRecord.program_id == bindparam("program"),
                                                      among(IdempotencyRecord.key, "keys"))


def before_refusal(session: Session, program_id: int, requests: list[tuple[str, str, Any]]
                   ) -> list[tuple[dict, bool] | InvalidRequest | IdempotencyConflict | None]:
    """For requests (key, operation, payload) that will be refused before any work, in one pass: what
    `idempotent` would answer first — the stored answer of a used key (replayed), 409 for a different request
    under it, a bad key's 400 — and None for a fresh key, whose refusal is then the answer (stored nowhere, as
    a refused work's claim is rolled back). The fresh keys are claimed and released at once, in a savepoint:
    a concurrent request holding one is waited for, as `idempotent` waits, and replayed once it commits."""
    out: list[tuple[dict, bool] | InvalidRequest | IdempotencyConflict | None] = []
    digests = [request_hash(operation, payload) for _, operation, payload in requests]
    rows: dict[str, dict] = {}
    for (key, operation, _), digest in zip(requests, digests, strict=True):
        try:
            _check_key(key)
        except InvalidRequest as exc:
            out.append(exc)
            continue
        out.append(None)
        rows.setdefault(key, {"program_id": program_id, "key": key, "operation": operation[:64],
                              "request_hash": digest, "created_at": utcnow()})
    if not rows:
        return out
    savepoint = session.begin_nested()
    try:
        # (in key order: two groups claiming the same keys wait for each other in one order, not deadlock)
        claim = upsert(session, IdempotencyRecord).values([rows[k] for k in sorted(rows)]).on_conflict_do_nothing()
        fresh = set(session.scalars(claim.returning(IdempotencyRecord.key)))
        used = [k for k in rows if k not in fresh]
        found = {r.key: r for r in session.execute(_FIND_MANY, {"program": program_id, "keys": used})} if used else {}
    finally:
        savepoint.rollback()
    for n, (key, _, _) in enumerate(requests):
        if out[n] is None and key in found:
            try:
                out[n] = _replay(found[key], key, digests[n])
            except IdempotencyConflict as exc:
                out[n] = exc
    return out


def _replay(found: Any, key: str, digest: str) -> tuple[dict, bool]:
    if found.request_hash != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was already used for a different request ({found.operation})")
    return found.response, True


def idempotent(
    session: Session, program_id: int, key: str, operation: str, payload, work: Callable[[], dict]
) -> tuple[dict, bool]:
    """Returns (result, replayed). `work` runs at most once per key, in the caller's transaction."""
    _check_key(key)
    digest = request_hash(operation, payload)
    record_id = _claim(session, {"program_id": program_id, "key": key, "operation": operation[:64],
                                 "request_hash": digest, "created_at": utcnow()})
    if record_id is None:
        return _replay(session.execute(_FIND, {"program": program_id, "key": key}).one(), key, digest)
    result = work()
    session.execute(_SAVE, {"record": record_id, "response": result})
    return result, False
