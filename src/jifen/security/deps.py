"""FastAPI dependencies: who is calling, may they, and the Idempotency-Key of a write."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jifen.errors import Forbidden, JifenError, Unauthorized
from jifen.security import member_tokens, ratelimit
from jifen.security.service import Principal, authenticate

# Declared as a security scheme so the OpenAPI page documents it and offers "Authorize".
bearer = HTTPBearer(auto_error=False, description="An API key from `jifen apikey create --role ROLE`")


async def principal(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if credentials is None:
        raise Unauthorized("missing 'Authorization: Bearer <api key>' header")
    secret = credentials.credentials.strip()
    # A key found a moment ago and limits counted in memory: nothing to wait for, so no thread of the pool
    # (handing a request to one and back cost more than the rest of this).
    if ratelimit.in_memory() and (known := request.app.state.known_keys.get(secret)):
        return _identify(request, secret, known)
    return await run_in_threadpool(_identify, request, secret)


def _identify(request: Request, secret: str, known: Principal | None = None) -> Principal:
    """known: the key as `known_keys` gave it just now (not asked twice)."""
    address = request.client.host if request.client else "unknown"
    if ratelimit.auth_blocked(address):
        raise ratelimit.RateLimited("too many failed attempts from this address; wait a minute",
                                    code="too_many_attempts")
    claims = member_tokens.read(secret)
    if claims is not None:
        found = Principal(key_id=0, name=claims["sub"], role="member", program_id=claims["prg"],
                          member_id=claims["sub"])
        ratelimit.member(found.program_id, cast(str, found.member_id))  # (a member token's: set just above)
        request.state.principal = found
        return found
    found = known or request.app.state.known_keys.get(secret)
    if found is None:
        with request.app.state.lookups() as session:
            found = authenticate(session, secret)
        if found is None:
            ratelimit.failed_auth(address)
            raise Unauthorized("unknown or revoked API key")
        request.app.state.known_keys.put(secret, found)
    ratelimit.key(found.key_id)
    request.state.principal = found  # for the audit log (api.py)
    return found


def require(permission: str):
    async def check(request: Request, who: Annotated[Principal, Depends(principal)]) -> Principal:  # (no thread)
        if who.member_id is not None:  # a member token: its own member, through the member's own routes
            member_tokens.check(who.member_id, request)
            return who
        if not who.may(permission):
            raise Forbidden(f"role {who.role!r} may not {permission}")
        return who

    check.permission = permission  # type: ignore[attr-defined]  # read by the authorisation matrix test (every /v1 route has one)
    return check


async def idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key:
        raise JifenError("every write needs an Idempotency-Key header", code="idempotency_key_required")
    if len(idempotency_key) > 255:
        raise JifenError("Idempotency-Key is longer than 255 characters", code="invalid_idempotency_key")
    return idempotency_key
