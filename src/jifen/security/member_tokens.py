"""Member tokens: short-lived JWTs (HS256, 15 minutes) a brand's app gets for a signed-in member
(`POST /v1/members/{id}/token` with an API key). A member token reads and acts only on its own member,
only through the routes listed in MEMBER_ROUTES; anything else is 403 (docs/security.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import jwt
from starlette.requests import Request

from jifen.errors import Forbidden, Unauthorized
from jifen.security import pii

TTL = dt.timedelta(minutes=15)
ISSUER = "jifen"
# What a member token may call, route by route, always with its own member as {member_id}: the member's own
# data and choices. A route not listed is refused, new routes included, whatever the permission it needs:
# a permission such as members:write also opens routes only the brand's backend should call.
MEMBER_ROUTES = frozenset({
    ("GET", "/v1/members/{member_id}"),  # personal data in clear: its own
    ("GET", "/v1/members/{member_id}/balance"),
    ("GET", "/v1/members/{member_id}/ledger"),
    ("GET", "/v1/members/{member_id}/export"),  # right of access
    ("GET", "/v1/members/{member_id}/consents"),
    ("POST", "/v1/members/{member_id}/consents"),
    ("GET", "/v1/members/{member_id}/inbox"),
    ("POST", "/v1/members/{member_id}/inbox/{item_id}/read"),
    ("PUT", "/v1/members/{member_id}/opt-outs"),
    ("POST", "/v1/members/{member_id}/check-in"),
    ("GET", "/v1/members/{member_id}/check-ins"),
    ("GET", "/v1/members/{member_id}/tasks"),
    ("GET", "/v1/members/{member_id}/badges"),
    ("GET", "/v1/members/{member_id}/friends"),
    ("POST", "/v1/members/{member_id}/invite-code"),  # its code to share; the referral is the backend's call
    ("GET", "/v1/members/{member_id}/restrictions"),  # what it may appeal
    ("POST", "/v1/members/{member_id}/restrictions/{restriction_id}/appeal"),
    ("GET", "/v1/members/{member_id}/recommendations"),
})
# Refused with its own code: a token minting tokens would renew itself past its 15 minutes for ever.
MINT = ("POST", "/v1/members/{member_id}/token")


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


def check(member_id: str, request: Request) -> None:
    route = (request.method, request.scope["route"].path)
    if route == MINT:
        raise Forbidden("a member token cannot get member tokens: the brand's backend issues a new one with its "
                        "API key", code="member_token_cannot_mint")
    if route not in MEMBER_ROUTES:
        raise Forbidden("a member token may not do this", code="forbidden")
    if request.path_params.get("member_id") != member_id:
        raise Forbidden("a member token acts only on its own member", code="forbidden")




# The member centre (web/member_centre.py): the page exchanges a member token for a cookie session of its own,
# a JWT for another audience (so neither passes for the other) that lasts a visit, with a CSRF token derived
# from it for the centre's forms.
CENTRE_TTL = dt.timedelta(hours=8)
CENTRE_AUDIENCE = "jifen member centre"


def centre_session(claims: dict, now: dt.datetime) -> str:
    session = {"iss": ISSUER, "aud": CENTRE_AUDIENCE, "sub": claims["sub"], "prg": claims["prg"],
               "iat": int(now.timestamp()), "exp": int((now + CENTRE_TTL).timestamp())}
    return jwt.encode(session, _secret(), algorithm="HS256")


def read_centre_session(token: str | None) -> dict | None:
    """The claims of a live member-centre session; None when there is none (absent, altered, expired)."""
    if not token:
        return None
    try:
        return jwt.decode(token, _secret(), algorithms=["HS256"], issuer=ISSUER, audience=CENTRE_AUDIENCE)
    except jwt.InvalidTokenError:
        return None


def centre_csrf(session_token: str) -> str:
    return hmac.new(_secret(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()[:32]
