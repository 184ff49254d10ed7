"""Signing a test client into the console as a console user, and the CSRF token its forms carry."""

from __future__ import annotations

import re

from jifen.db import run_in_transaction
from jifen.programs.service import get_program
from jifen.security.users import create_user

PASSWORD = "correct-horse-battery"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def add_user(app, role: str, username: str | None = None, password: str = PASSWORD, program: str = "default") -> str:
    """A console user of the role (username: the role's name unless given); returns the username."""
    username = username or role.replace("_", "-")
    run_in_transaction(app.state.sessions, lambda s: create_user(s, get_program(s, program), username, role, password,
                                                                 display_name=f"{role} user"))
    return username


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf field on the page"
    return found.group(1)


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    """Fetch the sign-in page (its pre-session token) and post the form; returns the response."""
    token = csrf_of(client.get("/console/login").text)
    return client.post("/console/login", data={"username": username, "password": password, "csrf": token, **extra},
                       follow_redirects=False)


def console_as(client, app, role: str, username: str | None = None) -> str:
    """Sign the client in as a new user of the role; returns the session's CSRF token."""
    r = sign_in(client, add_user(app, role, username))
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/console").text)


def once_keys(html: str, under: str) -> dict[str, str]:
    """{action: its one-time key} of the page's action forms whose action starts with `under`."""
    found = re.findall(rf'action="({re.escape(under)}[^"]*)"(?:(?!</form>).)*?name="once" value="([0-9a-f]+)"',
                       html, re.S)
    return dict(found)
