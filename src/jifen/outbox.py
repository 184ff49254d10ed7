"""The transactional outbox: messages written in the caller's transaction, one row each, nothing else.
Everything that reports a change writes here (the ledger included); notify/ delivers what is written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, String, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from jifen.db import Base, BigId, UTCDateTime, utcnow
from jifen.rows import insert_rows


class OutboxMessage(Base):
    """Written in the same transaction as the change it reports: no change, no message; no message lost."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_new", "fanned_out", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    topic: Mapped[str] = mapped_column(String(64))  # points.awarded, points.expiring, tier.changed …
    member_pk: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict] = mapped_column(JSON)
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


_INSERT = insert(OutboxMessage)
# Ledger entry types as the topics receivers subscribe to.
ENTRY_TOPICS = {
    "award": "points.awarded", "spend": "points.spent", "capture": "points.spent", "expire": "points.expired",
    "reverse": "points.reversed", "adjust": "points.adjusted", "transfer": "points.transferred",
    "hold": "points.held", "release": "points.released", "mature": "points.matured", "freeze": "points.frozen",
    "unfreeze": "points.unfrozen",
}


def emit(session: Session, program_id: int, topic: str, payload: dict, member_pk: int | None = None) -> None:
    session.connection().execute(_INSERT, [_row(program_id, topic, payload, member_pk)])


def emit_many(session: Session, messages: Sequence[tuple[int, str, dict, int | None]]) -> None:
    """Many messages (program id, topic, payload, member pk) in one statement, in order."""
    insert_rows(session, OutboxMessage, [_row(*m) for m in messages])


def emit_entries(session: Session, entries) -> None:
    """One message per ledger entry, written with the entries (a rolled-back entry takes its message along)."""
    if entries:
        insert_rows(session, OutboxMessage, [_row(e.program_id, ENTRY_TOPICS.get(e.type, f"points.{e.type}"), {
            "entry_id": e.id, "type": e.type, "points": e.points, "wallet_id": e.wallet_id,
            "member_pk": e.member_pk, "counterparty_pk": e.counterparty_pk, "reference": e.reference,
            "reason": e.reason, "occurred_at": e.occurred_at.isoformat()}, e.member_pk) for e in entries])


def _row(program_id: int, topic: str, payload: dict, member_pk: int | None) -> dict:
    return {"program_id": program_id, "topic": topic, "member_pk": member_pk, "payload": payload,
            "fanned_out": False, "created_at": utcnow()}
