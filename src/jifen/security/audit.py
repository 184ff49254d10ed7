"""The audit log: every write an API key or console session makes (who, what, on which path, with which
idempotency key, the answer's status, and the rows it changed with their values before and after —
personal data masked, secrets redacted, ledger rows summarised: security/changes.py), hash-chained like
the journal so a deleted or edited line shows.
Written once the request's own transaction has committed and before its answer leaves (api.AuditLines), in a
transaction of its own shared with the lines of concurrent requests (`commit_lines`);
`jifen audit verify` recomputes the chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from jifen.db import Base, BigId, UTCDateTime, run_in_transaction, upsert, utcnow
from jifen.rows import insert_rows
from jifen.security.audit_keys import action_of, member_of

GENESIS = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_seq", "seq", unique=True),
        # The console's searches, newest first within a programme (web/audit_page.py): keyed on seq.
        Index("ix_audit_program_seq", "program_id", "seq"),
        Index("ix_audit_actor_seq", "program_id", "actor", "seq"),
        Index("ix_audit_action_seq", "program_id", "action", "seq"),
        Index("ix_audit_member_seq", "program_id", "member_id", "seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    program_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int] = mapped_column(Integer)
    # idempotency key, query string, and the changes: [{table, id, op, before, after}] (security/changes.py)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Search keys derived from path and detail (security/audit_keys.py): outside the hash, checked by verify.
    action: Mapped[str | None] = mapped_column(String(16))
    member_id: Mapped[str | None] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the last seq and hash (locked while a line is appended)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


def line_hash(e: Any) -> str:
    """The hash of a line (an AuditEntry, or a namespace of its columns before it is stored)."""
    body = [e.seq, e.program_id, e.actor, e.role, e.method, e.path, e.status, e.detail,
            e.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), e.prev_hash]
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
                          .encode()).hexdigest()


def append(session: Session, *, program_id: int | None, actor: str, role: str, method: str, path: str,
           status: int, detail: dict) -> None:
    append_many(session, [{"program_id": program_id, "actor": actor, "role": role, "method": method,
                           "path": path, "status": status, "detail": detail}])


def append_many(session: Session, lines: list[dict[str, Any]]) -> None:
    """Lines (append's keywords each) chained in this order, the head locked once for all of them. Written
    as rows, not ORM objects: every write request appends one, and the unit of work cost more than the rest
    of the append (a profile of single events under group commit: 15 % of the server's CPU)."""
    locked = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = session.scalar(locked)
    if head is None:  # the first line: concurrent first writers race to create the head
        session.execute(upsert(session, AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = session.scalars(locked).one()
    seq, prev, rows = head.seq, head.hash, []
    for line in lines:
        detail = json.loads(json.dumps(line["detail"], ensure_ascii=False, default=str))  # as it reads back
        seq += 1
        row = line | {"detail": detail, "seq": seq, "at": utcnow(), "prev_hash": prev,
                      "action": action_of(line["path"]), "member_id": member_of(line["path"], detail)}
        row["hash"] = prev = line_hash(SimpleNamespace(**row))
        rows.append(row)
    insert_rows(session, AuditEntry, rows)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=prev))


def commit_lines(factory: sessionmaker[Session], _key: Any, lines: list[dict[str, Any]]) -> list[bool]:
    """The audit lines of concurrent requests in one transaction (a GroupCommit kind, api.py): the head is
    one row every write's line locks, so one transaction per line queues every write behind it."""
    run_in_transaction(factory, lambda session: append_many(session, lines))
    return [True] * len(lines)


def verify(session: Session) -> list[str]:
    """Problems in the chain: a gap, a broken link or an altered line; [] when intact."""
    problems, prev, seq = [], GENESIS, 0
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
        seq += 1
        if e.seq != seq:
            problems.append(f"line {seq} missing (found {e.seq})")
            seq = e.seq
        if e.prev_hash != prev:
            problems.append(f"line {e.seq}: does not follow line {e.seq - 1}")
        if line_hash(e) != e.hash:
            problems.append(f"line {e.seq}: altered")
        elif (e.action, e.member_id) != (action_of(e.path), member_of(e.path, e.detail)):
            problems.append(f"line {e.seq}: search keys do not match the line")
        prev = e.hash
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq, head.hash) != (seq, prev):
        problems.append(f"head says line {head.seq}, the log ends at {seq}")
    return problems
