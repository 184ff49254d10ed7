"""Retention: logs are deleted once they have served (settings `retention_*`, config.py); points evidence
is kept at least three years and the hash-chained journal and audit log are never touched.
`jifen privacy purge [--dry-run]` and, once a day, the job runner (jobs.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, exists, func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from jifen.config import Settings, get_settings
from jifen.db import run_in_transaction, utcnow
from jifen.errors import InvalidRequest
from jifen.events.models import Event
from jifen.idempotency import IdempotencyRecord
from jifen.members.models import RetentionRun
from jifen.notify.models import Delivery, ExpiryReminder, InboxItem
from jifen.outbox import OutboxMessage

EVIDENCE_MIN_DAYS = 3 * 365  # seed 001: points evidence kept at least three years
FINISHED = ("delivered", "skipped", "dead")
NEVER_PURGED = ("journal_entries", "postings", "lots", "lot_moves", "holds", "audit_log", "consents")
CHUNK = 5000  # rows per DELETE, so a first purge of a large table does not hold one huge transaction


@dataclass(frozen=True)
class Rule:
    table: str
    model: type[Any]
    where: ColumnElement[bool]  # a SQL condition on the model
    key: Any = None  # the id column, for chunked deletes (None: one statement)


def check(settings: Settings) -> None:
    """Refuse a configuration that would purge evidence early or keep nothing."""
    if settings.retention_evidence_days is not None and settings.retention_evidence_days < EVIDENCE_MIN_DAYS:
        raise InvalidRequest(f"JIFEN_RETENTION_EVIDENCE_DAYS={settings.retention_evidence_days} is under the "
                             f"{EVIDENCE_MIN_DAYS} days points evidence must be kept", code="retention_too_short")
    for name in ("retention_deliveries_days", "retention_idempotency_days", "retention_inbox_days",
                 "retention_reminders_days"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise InvalidRequest(f"JIFEN_{name.upper()} must be at least 1 day", code="invalid_retention")


def rules(settings: Settings, now: dt.datetime) -> list[Rule]:
    def ago(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    deliveries = ago(settings.retention_deliveries_days)
    finished = and_(Delivery.status.in_(FINISHED), Delivery.created_at < deliveries)
    unfinished = aliased(Delivery)
    out = [
        Rule("deliveries", Delivery, finished, Delivery.id),
        # A message goes when it is fanned out, old enough, and none of its deliveries is still to keep.
        Rule("outbox_messages", OutboxMessage, and_(
            OutboxMessage.fanned_out.is_(True), OutboxMessage.created_at < deliveries,
            ~exists().where(unfinished.message_id == OutboxMessage.id, ~and_(
                unfinished.status.in_(FINISHED), unfinished.created_at < deliveries))), OutboxMessage.id),
        Rule("idempotency_records", IdempotencyRecord,
             IdempotencyRecord.created_at < ago(settings.retention_idempotency_days), IdempotencyRecord.id),
        Rule("expiry_reminders", ExpiryReminder,
             ExpiryReminder.expires_on < (now - dt.timedelta(days=settings.retention_reminders_days)).date()),
    ]
    if settings.retention_inbox_days is not None:
        out.append(Rule("inbox_items", InboxItem, InboxItem.created_at < ago(settings.retention_inbox_days),
                        InboxItem.id))
    if settings.retention_evidence_days is not None:
        out.append(Rule("events", Event, Event.received_at < ago(settings.retention_evidence_days), Event.id))
    return out


def _delete(factory: sessionmaker[Session], rule: Rule) -> int:
    if rule.key is None:
        return run_in_transaction(factory, lambda s: cast(CursorResult[Any], s.execute(
            delete(rule.model).where(rule.where))).rowcount)
    def chunk(s: Session) -> int:
        ids = list(s.scalars(select(rule.key).where(rule.where).order_by(rule.key).limit(CHUNK)))
        if ids:
            s.execute(delete(rule.model).where(rule.key.in_(ids)).execution_options(synchronize_session=False))
        return len(ids)

    done = 0
    while (n := run_in_transaction(factory, chunk)) > 0:
        done += n
    return done


def purge(factory: sessionmaker[Session], now: dt.datetime | None = None, *, dry_run: bool = False,
          settings: Settings | None = None) -> dict[str, int]:
    """Rows deleted (or, with dry_run, that would be) per table; the run is recorded in retention_runs."""
    settings = settings or get_settings()
    now = now or utcnow()
    check(settings)
    counts: dict[str, int] = {}
    for rule in rules(settings, now):  # deliveries before the outbox messages they point to
        if dry_run:
            with factory() as s:
                counts[rule.table] = cast(int, s.scalar(select(func.count()).select_from(rule.model).where(rule.where)))
        else:
            counts[rule.table] = _delete(factory, rule)
    if not dry_run:
        run_in_transaction(factory, lambda s: s.add(RetentionRun(at=now, counts=counts)))
    return counts


def purge_if_due(factory: sessionmaker[Session], now: dt.datetime | None = None,
                 settings: Settings | None = None) -> dict[str, int] | None:
    """The daily run: purges when the last recorded run is a day old or more (several workers may both run
    it at the turn of the day: a purge is idempotent)."""
    now = now or utcnow()
    with factory() as s:
        last = s.scalar(select(func.max(RetentionRun.at)))
    if last is not None and now - last < dt.timedelta(days=1):
        return None
    return purge(factory, now, settings=settings)
