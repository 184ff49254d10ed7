"""Events as stored: one row per event_id (the idempotency key), claimed before it is priced; a replay
answers with the stored result; the same id with another body, or an order sent twice, is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.db import among
from jifen.errors import Conflict, IdempotencyConflict, InvalidRequest, NotFound
from jifen.events.models import Event
from jifen.events.schemas import EventIn
from jifen.idempotency import request_hash
from jifen.members.models import Member
from jifen.rows import insert_new, update_rows

if TYPE_CHECKING:
    from jifen.events.context import Intake

FUTURE_SLACK = dt.timedelta(minutes=5)  # clock skew allowed between a till and the server



KNOWN = select(Event).where(Event.program_id == bindparam("program"),
                             among(Event.event_id, "ids"))

ORDERS_TAKEN = select(Event.order_id).where(Event.program_id == bindparam("program"), Event.type == "purchase",
                                             among(Event.order_id, "orders"))

def check_event(ctx: Intake, ev: EventIn, member: Member | None) -> None:
    if member is None:
        raise NotFound(f"unknown member {ev.member_id!r}", code="unknown_member")
    if member.erased_at is not None:  # anonymised (members/privacy.py): nothing more is earned
        raise Conflict(f"member {ev.member_id!r} was erased", code="member_erased")
    if ev.occurred_at > ctx.now + FUTURE_SLACK:
        raise InvalidRequest("occurred_at is in the future", code="occurred_in_future")

def event_row(ctx: Intake, ev: EventIn, member: Member, digest: str) -> dict:
    return {"program_id": ctx.program.id, "event_id": ev.event_id, "request_hash": digest, "member_pk": member.id,
            "type": ev.type, "channel": ev.channel, "occurred_at": ev.occurred_at, "amount": ev.amount,
            "order_id": ev.order_id, "data": {"lines": [li.model_dump(mode="json") for li in ev.lines],
                                              "attributes": ev.attributes},
            "points": 0, "result": {}, "refunded_amount": Decimal(0), "points_reversed": 0, "received_at": ctx.now}

def event_digest(ev: EventIn) -> str:
    return request_hash("event", ev.model_dump(mode="json"))

def replay(row: Event, ev: EventIn, digest: str) -> dict:
    if row.request_hash != digest:
        raise IdempotencyConflict(f"event_id {ev.event_id!r} was already used for a different event",
                                  code="event_id_reused")
    return stored_view(row, ev.member_id, "replayed")

def duplicate_order(ev: EventIn) -> Conflict:
    return Conflict(f"order {ev.order_id!r} was already sent as another purchase event", code="duplicate_order")

def stored_view(row: Event, member_id: str, status: str = "processed") -> dict:
    points = -sum(e["points"] for e in row.result.get("entries", [])) if row.type == "refund" else row.points
    return view(row.event_id, member_id, row.type, status, row.rule_version, points, row.result)

def view(event_id, member_id, type_, status, version, points, result) -> dict:
    return {"event_id": event_id, "member_id": member_id, "type": type_, "status": status, "rule_version": version,
            "points": points, **result}


def claim(session: Session, rows: list[dict]) -> dict[str, int]:
    """Store new events; {event_id: pk} of those stored (an id already taken is left out)."""
    if not rows:
        return {}
    return {eid: pk for pk, eid in insert_new(session, Event, rows, ("id", "event_id"))}


def save_results(session: Session, results: list[tuple[int, int | None, int, dict]]) -> None:
    """(pk, rule version, points, result) of each priced event, written together."""
    update_rows(session, Event, [{"id": pk, "rule_version": version, "points": points, "result": result}
                                 for pk, version, points, result in results])
