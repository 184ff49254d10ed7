"""FastAPI dependencies: who is calling, may they, and the Idempotency-Key of a write."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jifen.errors import Forbidden, JifenError, Unauthorized
from jifen.security import member_tokens, ratelimit
from jifen.security.service import Principal, authenticate

# Declared as a security scheme so the OpenAPI page documents it and offers "Authorize".
bearer = HTTPBearer(auto_error=False, description="An API key from `jifen apikey create --role ROLE`")


def principal(request: Request,
              credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if credentials is None:
        raise Unauthorized("missing 'Authorization: Bearer <api key>' header")
    address = request.client.host if request.client else "unknown"
    if ratelimit.auth_blocked(address):
        raise ratelimit.RateLimited("too many failed attempts from this address; wait a minute",
                                    code="too_many_attempts")
    claims = member_tokens.read(credentials.credentials.strip())
    if claims is not None:
        found = Principal(key_id=0, name=claims["sub"], role="member", program_id=claims["prg"],
                          member_id=claims["sub"])
        ratelimit.member(found.program_id, cast(str, found.member_id))  # (a member token's: set just above)
        request.state.principal = found
        return found
    with request.app.state.lookups() as session:
        found = authenticate(session, credentials.credentials.strip())
    if found is None:
        ratelimit.failed_auth(address)
        raise Unauthorized("unknown or revoked API key")
    ratelimit.key(found.key_id)
    request.state.principal = found  # for the audit log (api.py)
    return found


def require(permission: str):
    def check(request: Request, who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.member_id is not None:  # a member token: its own member, through the member's own routes
            member_tokens.check(who.member_id, request)
            return who
        if not who.may(permission):
            raise Forbidden(f"role {who.role!r} may not {permission}")
        return who

    check.permission = permission  # type: ignore[attr-defined]  # read by the authorisation matrix test (every /v1 route has one)
    return check


def idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key:
        raise JifenError("every write needs an Idempotency-Key header", code="idempotency_key_required")
    if len(idempotency_key) > 255:
        raise JifenError("Idempotency-Key is longer than 255 characters", code="invalid_idempotency_key")
    return idempotency_key
