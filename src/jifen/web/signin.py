"""Console sign-in and sign-out.

The sign-in form is protected against login CSRF (another site signing the browser in as the
attacker) with a pre-session token: GET /console/login puts a random token both in a cookie
(HttpOnly, SameSite=Strict, path /console/login) and in the form's hidden field, and the POST must bring
the two back equal. A cross-site POST carries no SameSite=Strict cookie and cannot read the page to learn
the token. Chosen over an Origin/Referer check because it needs no knowledge of the public host name
(behind a proxy the Host header may not be the browser's origin) and does not fail for browsers or
privacy tools that strip Referer.

Failures all get one answer (401, "wrong username or password") whether the username is unknown, the
password wrong, the account disabled or locked: a caller cannot learn which usernames exist. Failed
attempts count towards the per-address limit (security/ratelimit.py) and the per-account lockout
(security/users.py).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Cookie, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from jifen.db import run_in_transaction, utcnow
from jifen.programs.models import Program
from jifen.security import ratelimit, sessions, users
from jifen.web.console import COOKIE, Refused, Writer, render, same_token

router = APIRouter(prefix="/console", include_in_schema=False)
LOGIN_CSRF = "jifen_login_csrf"


def _programs(request: Request) -> list[str]:
    with request.app.state.read_sessions() as s:
        return list(s.scalars(select(Program.code).order_by(Program.id)))


def _login_page(request: Request, status: int = 200, **context):
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(32)
    request.state.csrf = token
    response = render(request, "login.html", status=status, programs=_programs(request), **context)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/console/login",
                        secure=request.url.scheme == "https", max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request):
    return _login_page(request)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
          program: Annotated[str, Form()] = "default", csrf: Annotated[str, Form()] = "",
          jifen_login_csrf: Annotated[str | None, Cookie()] = None, jifen_console: Annotated[str | None, Cookie()] = None):
    address = request.client.host if request.client else "unknown"
    if ratelimit.auth_blocked(address):
        return _login_page(request, status=429, error=True, username=username)
    if not same_token(csrf, jifen_login_csrf):
        raise Refused("csrf")
    now = utcnow()

    def attempt(s):
        prog = s.scalar(select(Program).where(Program.code == program.strip()))
        result = users.sign_in(s, prog.id if prog else 0, username, password, now)
        if result.user is None:
            return None
        if jifen_console:  # a new session, never the one the browser may have carried in
            old = sessions.lookup(s, jifen_console, now)
            if old is not None:
                sessions.revoke(s, old.session_id, now)
        _, token = sessions.start(s, result.user, now)
        return result.user.principal(), token

    done = run_in_transaction(request.app.state.sessions, attempt)
    if done is None:
        try:
            ratelimit.failed_auth(address)
        except ratelimit.RateLimited:
            return _login_page(request, status=429, error=True, username=username)
        return _login_page(request, status=401, error=True, username=username)
    who, token = done
    request.state.principal = who  # the sign-in is audited (api.py)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_CSRF, path="/console/login")
    return response


@router.post("/logout")
def logout(request: Request, who: Writer):
    session_id = request.state.console_session
    run_in_transaction(request.app.state.sessions, lambda s: sessions.revoke(s, session_id, utcnow()))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response
