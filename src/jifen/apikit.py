"""What every /v1 router shares: the Idempotency-Key every state-changing request carries, honoured in one place
(`keyed`: the first request with a key does the work and its JSON answer is stored in the same transaction; a
replay answers with that, `Idempotent-Replayed: true`; the key with another request is 409 — jifen/idempotency.py),
the same through the ledger's scope (`write`) or committed with the concurrent writes of its kind (`grouped`),
the member a write names, and an empty body."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from jifen.db import run_in_transaction, utcnow
from jifen.flows.group_commit import ALONE, GroupCommit, Write
from jifen.idempotency import idempotent
from jifen.ledger.operations import Scope  # what a write's work is given
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.programs.models import Program
from jifen.programs.service import get_wallet
from jifen.security import ratelimit
from jifen.security.deps import idempotency_key
from jifen.security.service import Principal
from jifen.strict import Strict

Key = Annotated[str, Depends(idempotency_key)]


def keyed(request: Request, who: Principal, key: str, operation: str, payload: BaseModel | dict | None,
          work: Callable[[Session], Any], status: int = 200,
          view: Callable[[Session, Any], Any] | None = None) -> JSONResponse:
    """`work` at most once per key, in one transaction. `view` renders the stored result, first time and on
    replay alike, for answers that must not be stored (a webhook's signing secret)."""
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload or {}

    def tx(session: Session):
        result, replayed = idempotent(session, who.program_id, key, operation, body,
                                      lambda: jsonable_encoder(work(session)))
        return (view(session, result) if view else result), replayed

    result, replayed = run_in_transaction(request.app.state.sessions, tx)
    return JSONResponse(result, status_code=status, headers={"Idempotent-Replayed": str(replayed).lower()})


def scope(session: Session, who: Principal, wallet: str | None = None) -> Scope:
    program = session.get_one(Program, who.program_id)
    return Scope(session, program, get_wallet(session, program, wallet), utcnow(), actor=who.actor)


def write(request: Request, who: Principal, key: str, operation: str, body: BaseModel,
          work: Callable[[Scope], dict[str, Any]], status: int = 200) -> JSONResponse:
    """One keyed write through the ledger's scope: the programme, the body's wallet, now. (A request risk
    control refuses is answered, and its case recorded, by the app's RiskBlocked handler.)"""
    wallet = getattr(body, "wallet", None)
    return keyed(request, who, key, operation, body, lambda session: work(scope(session, who, wallet)), status)


async def grouped(request: Request, commit: GroupCommit, who: Principal, key: str, operation: str, body: BaseModel,
                  work: Callable[[Scope], dict[str, Any]], status: int = 200) -> JSONResponse:
    """`write`, committed in one transaction with the concurrent writes of its kind (flows/group_commit.py);
    alone (`write` itself) when the group says so. Awaited: a request waiting for its group holds no thread."""
    item = Write(key, operation, body.model_dump(mode="json"), lambda sc: jsonable_encoder(work(sc)), who.actor,
                 getattr(body, "wallet", None))
    outcome = await asyncio.wrap_future(commit.submit(who.program_id, item))
    if outcome is ALONE:
        return await run_in_threadpool(write, request, who, key, operation, body, work, status)
    if isinstance(outcome, Exception):
        raise outcome
    result, replayed = outcome
    return JSONResponse(result, status_code=status, headers={"Idempotent-Replayed": str(replayed).lower()})


def member(sc: Scope, member_id: str) -> Member:
    """The member a write names (rate-limited per member: a script hammering one account is stopped)."""
    ratelimit.member(sc.program.id, member_id)
    return get_member(sc.session, sc.program, member_id)


class NoBody(Strict):
    pass
