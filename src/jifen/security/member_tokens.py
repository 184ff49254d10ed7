"""Member tokens: short-lived JWTs (HS256, 15 minutes) a brand's app gets for a signed-in member
(`POST /v1/members/{id}/token` with an API key). A member token reads and acts only on its own member,
only through the routes that name the member in their path (MEMBER_ROUTES); anything else is 403."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import jwt

from jifen.errors import Forbidden, Unauthorized
from jifen.security import pii

TTL = dt.timedelta(minutes=15)
ISSUER = "jifen"
# Permissions a member token carries, and only on its own /v1/members/{member_id}/… routes.
# pii:read: the member's own personal data in clear, and their data export (right of access).
MEMBER_PERMISSIONS = frozenset({"members:read", "ledger:read", "events:write", "members:write", "pii:read"})


def _secret() -> bytes:
    """Derived from the lookup key: one secret to manage, never the data-encryption key itself."""
    return hmac.new(pii.keyring()[1], b"jifen member tokens", hashlib.sha256).digest()


def issue(program_id: int, member_id: str, now: dt.datetime) -> dict:
    claims = {"iss": ISSUER, "sub": member_id, "prg": program_id, "iat": int(now.timestamp()),
              "exp": int((now + TTL).timestamp())}
    return {"token": jwt.encode(claims, _secret(), algorithm="HS256"), "expires_at": (now + TTL).isoformat()}


def read(token: str) -> dict | None:
    """The claims of a valid member token; None when it is not one (an API key, say)."""
    if token.count(".") != 2:
        return None
    try:
        return jwt.decode(token, _secret(), algorithms=["HS256"], issuer=ISSUER)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("member token expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid member token") from None


def check(member_id: str, permission: str, path_member: str | None) -> None:
    if permission not in MEMBER_PERMISSIONS or path_member is None:
        raise Forbidden("a member token may not do this", code="forbidden")
    if path_member != member_id:
        raise Forbidden("a member token acts only on its own member", code="forbidden")


