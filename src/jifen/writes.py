"""Keyed writes over HTTP: the Idempotency-Key every state-changing /v1 request carries, honoured in one place.

The first request with a key does the work and its JSON answer is stored in the same transaction; a replay
answers with that (`Idempotent-Replayed: true`); the key with another request is 409 (jifen/idempotency.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from jifen.db import run_in_transaction
from jifen.idempotency import idempotent
from jifen.security.deps import idempotency_key
from jifen.security.service import Principal

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
