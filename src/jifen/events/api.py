"""Event intake API. The event_id is the idempotency key: a resent event answers with its first result.
A single event is committed with the concurrent ones of its programme (flows/group_commit.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from jifen.db import run_in_transaction, utcnow
from jifen.events.schemas import EventBatchIn, EventIn
from jifen.flows.group_commit import ALONE
from jifen.flows.intake import ingest
from jifen.metrics import count_events
from jifen.openapi import errors
from jifen.programs.models import Program
from jifen.security.deps import require
from jifen.security.service import Principal

router = APIRouter(prefix="/v1/events", tags=["events"])
Sender = Annotated[Principal, Depends(require("events:write"))]


def _run(request: Request, who: Principal, events: list[EventIn], strict: bool) -> list[dict]:
    def tx(session):
        return ingest(session, session.get(Program, who.program_id), events, now=utcnow(), actor=who.actor,
                      strict=strict)

    return run_in_transaction(request.app.state.sessions, tx)  # (a refused event: api.py records its case)


@router.post("", status_code=201, summary="One member event; the answer says which rules fired and the points awarded",
             responses={**errors(404, 409), 200: {"description": "A replay: this event_id was sent before with the "
                                                   "same body; its first result"}})
async def post_event(body: EventIn, request: Request, who: Sender):
    # Async, so a request waiting for its group holds no thread of the pool.
    outcome = await asyncio.wrap_future(request.app.state.group_commit.submit((who.program_id, who.actor), body))
    if outcome is ALONE:
        (outcome,) = await run_in_threadpool(_run, request, who, [body], True)
    if isinstance(outcome, Exception):
        raise outcome
    result = outcome
    count_events([result])
    replayed = result["status"] == "replayed"
    return JSONResponse(result, status_code=200 if replayed else 201,
                        headers={"Idempotent-Replayed": str(replayed).lower()})


@router.post("/batch", summary="Up to 1,000 events in one transaction; each gets its own result or error")
def post_batch(body: EventBatchIn, request: Request, who: Sender):
    results = _run(request, who, body.events, strict=False)
    count_events(results)
    counts = {s: sum(r["status"] == s for r in results) for s in ("processed", "replayed", "rejected")}
    return {"results": results, **counts}
