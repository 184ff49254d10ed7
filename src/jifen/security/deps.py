"""FastAPI dependencies: who is calling, may they, and the Idempotency-Key of a write."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from jifen.errors import Forbidden, JifenError, Unauthorized
from jifen.security.service import Principal, authenticate


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("missing 'Authorization: Bearer <api key>' header")
    with request.app.state.sessions() as session:
        found = authenticate(session, authorization.removeprefix("Bearer ").strip())
    if found is None:
        raise Unauthorized("unknown or revoked API key")
    return found


def require(permission: str):
    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(permission):
            raise Forbidden(f"role {who.role!r} may not {permission}")
        return who

    return check


def idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key:
        raise JifenError("every POST needs an Idempotency-Key header", code="idempotency_key_required")
    if len(idempotency_key) > 255:
        raise JifenError("Idempotency-Key is longer than 255 characters", code="invalid_idempotency_key")
    return idempotency_key
