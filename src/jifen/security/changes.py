"""Before/after values for the audit log: what a request changed in the database, collected from the
ORM as it flushes and kept once the transaction commits (a rolled-back attempt leaves nothing).

The audit middleware (api.py) opens a collector for each write request; it lives in a ContextVar, which
starlette copies into the thread pool where sync endpoints and dependencies run, so every session of the
app's sessionmaker used for that request reports into it. The middleware puts the list into the audit
line's `detail`, which the hash chain covers.

What is written:
- one item per changed row: {table, id, op: insert/update/delete, before: {changed columns}, after: {…}};
- personal data (columns of type pii.Encrypted) masked with pii.mask — never in clear;
- secrets (password and key hashes, tokens, webhook secrets, lookup hashes) as "[redacted]": the line
  says the secret changed, never what it is;
- high-volume tables (the ledger, events, the outbox …) summarised: {table, op, count, ids (the first 20)};
- bulk statements (UPDATE … WHERE, INSERT of many rows through Core) as {table, op, statements, rows}.
A model can choose for itself with a class attribute `__audit__ = "summary"` (or "skip"), and a column
with `info={"audit": "secret"}`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, sessionmaker

from jifen.security import pii

current: ContextVar[list | None] = ContextVar("jifen_audit_changes", default=None)

SUMMARISED = frozenset({
    "accounts", "journal_entries", "postings", "lots", "lot_moves", "holds", "chain_heads", "events",
    "outbox_messages", "deliveries", "idempotency_records", "inbox_items", "expiry_reminders", "rule_usage",
    "member_devices",
})
SKIPPED = frozenset({"audit_log", "audit_head", "console_sessions"})  # the log itself; session bookkeeping
SECRET = re.compile(r"password|secret|token|hash|csrf", re.IGNORECASE)
REDACTED = "[redacted]"
MAX_ITEMS = 200  # per request; beyond it a count
MAX_IDS = 20
MAX_TEXT = 2000  # a longer value is written as its length and SHA-256
PENDING = "jifen_audit_pending"


def listen(factory: sessionmaker[Session]) -> None:
    """Report the flushes of this sessionmaker's sessions into the request's collector."""
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "do_orm_execute", _bulk)
    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)


def _kind(mapper) -> str:
    table = mapper.local_table.name
    return getattr(mapper.class_, "__audit__", None) or (
        "skip" if table in SKIPPED else "summary" if table in SUMMARISED else "full")


def _after_flush(session: Session, _context) -> None:
    if current.get() is None:
        return
    pending = session.info.setdefault(PENDING, [])
    for op, objects in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            state = inspect(obj)
            kind = _kind(state.mapper)
            if kind == "skip" or (op == "update" and not session.is_modified(obj, include_collections=False)):
                continue
            table, key = state.mapper.local_table.name, _identity(state)
            if kind == "summary":
                pending.append({"table": table, "op": op, "id": key, "summary": True})
                continue
            before, after = _values(state, op)
            if op != "insert" or after:
                pending.append({"table": table, "id": key, "op": op, "before": before, "after": after})


def _identity(state):
    key = state.identity if state.identity is not None else state.mapper.primary_key_from_instance(state.obj())
    key = [_plain(k) for k in key or ()]
    return key[0] if len(key) == 1 else key


def _values(state, op: str) -> tuple[dict, dict]:
    """Before and after of the changed columns (every column for an insert / delete), made safe."""
    before, after = {}, {}
    for attr in state.mapper.column_attrs:
        column = attr.columns[0]
        history = state.attrs[attr.key].history
        if op == "update":
            if not history.has_changes():
                continue
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old == new:
                continue
            before[attr.key], after[attr.key] = _safe(column, old), _safe(column, new)
        else:
            value = state.dict.get(attr.key)
            if value is not None:
                (after if op == "insert" else before)[attr.key] = _safe(column, value)
    return before, after


def _safe(column, value):
    if value is None:
        return None
    if column.info.get("audit") == "secret" or SECRET.search(column.key or column.name):
        return REDACTED
    if isinstance(column.type, pii.Encrypted):
        return pii.mask(str(value))
    return _plain(value)


def _plain(value):
    """A JSON value, identical after a round trip through the database (the line's hash depends on it)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_TEXT:
        return {"chars": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return text if isinstance(value, str) else json.loads(text)


def _bulk(state) -> None:
    """ORM-enabled INSERT / UPDATE / DELETE statements (the ledger's hot paths, revocations …)."""
    if current.get() is None or not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is None or _kind(mapper) == "skip":
        return
    op = "insert" if state.is_insert else "update" if state.is_update else "delete"
    params = state.parameters
    rows = len(params) if isinstance(params, list | tuple) else 1
    state.session.info.setdefault(PENDING, []).append(
        {"table": mapper.local_table.name, "op": op, "bulk": True, "rows": rows})


def _after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    collector = current.get()
    if pending and collector is not None:
        collector.extend(pending)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


def summary(collected: list) -> list[dict]:
    """The collected items as the audit line shows them: full rows first (at most MAX_ITEMS), then one
    summary per table and operation."""
    rows: list[dict[str, Any]]
    grouped: dict[tuple[str, str], dict[str, Any]]
    rows, grouped = [], {}
    for item in collected:
        if item.get("summary") or item.get("bulk"):
            group = grouped.setdefault((item["table"], item["op"]), {"table": item["table"], "op": item["op"]})
            if item.get("summary"):
                group["count"] = group.get("count", 0) + 1
                ids = group.setdefault("ids", [])
                if len(ids) < MAX_IDS:
                    ids.append(item["id"])
            else:
                group["statements"] = group.get("statements", 0) + 1
                group["rows"] = group.get("rows", 0) + item["rows"]
        else:
            rows.append(item)
    if len(rows) > MAX_ITEMS:
        rows = rows[:MAX_ITEMS] + [{"more": len(rows) - MAX_ITEMS}]
    return rows + list(grouped.values())
