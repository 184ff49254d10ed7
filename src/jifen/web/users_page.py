"""The console's user administration (super-admin only): list the programme's console users, create one
with a role, change a role, reset a password, disable. Every form is CSRF-checked and, like every console
write, audited with the values before and after (password hashes redacted)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from jifen.db import owned, run_in_transaction, utcnow
from jifen.errors import JifenError
from jifen.programs.models import Program
from jifen.security import users
from jifen.security.service import ROLES, Principal
from jifen.security.users import ConsoleUser
from jifen.web.console import allowed, render

router = APIRouter(prefix="/console", include_in_schema=False)
Admin = Annotated[Principal, allowed("users:manage")]
AdminForm = Annotated[Principal, allowed("users:manage", write=True)]
BACK = "/console/users"


def _page(request: Request, who: Principal, status: int = 200, error: str | None = None, form: dict | None = None):
    now = utcnow()
    with request.app.state.read_sessions() as s:
        program = s.get(Program, who.program_id)
        rows = list(s.scalars(select(ConsoleUser).where(ConsoleUser.program_id == who.program_id)
                              .order_by(ConsoleUser.username)))
    states = {u.id: "disabled" if u.disabled_at else "locked" if u.locked(now) else "active" for u in rows}
    return render(request, "users.html", status=status, who=who, users=rows, states=states, roles=ROLES,
                  tz=program.timezone, error=error, form=form or {})


def _change(request: Request, who: Principal, work, form: dict | None = None):
    """Run one change in a transaction; back to the list, or the list with the error (422)."""
    try:
        run_in_transaction(request.app.state.sessions, work)
    except JifenError as exc:
        return _page(request, who, status=exc.status if exc.status != 400 else 422, error=exc.message, form=form)
    return RedirectResponse(BACK, status_code=303)


def _target(s, who: Principal, user_id: int, *, not_self: bool = False) -> ConsoleUser:
    user = owned(s, ConsoleUser, user_id, who.program_id, "console user", "unknown_user")
    if not_self and user.id == who.user_id:
        raise JifenError("you cannot disable yourself or change your own role", code="not_yourself", status=422)
    return user


@router.get("/users")
def user_list(request: Request, who: Admin):
    return _page(request, who)


@router.post("/users")
def user_create(request: Request, who: AdminForm, username: Annotated[str, Form()], role: Annotated[str, Form()],
                password: Annotated[str, Form()], display_name: Annotated[str, Form()] = ""):
    return _change(request, who, lambda s: users.create_user(
        s, s.get(Program, who.program_id), username, role, password, display_name=display_name),
        form={"username": username, "display_name": display_name, "role": role})


@router.post("/users/{user_id}/role")
def user_role(request: Request, who: AdminForm, user_id: int, role: Annotated[str, Form()]):
    return _change(request, who, lambda s: users.set_role(_target(s, who, user_id, not_self=True), role))


@router.post("/users/{user_id}/password")
def user_password(request: Request, who: AdminForm, user_id: int, password: Annotated[str, Form()]):
    return _change(request, who, lambda s: users.set_password(s, _target(s, who, user_id), password))


@router.post("/users/{user_id}/disable")
def user_disable(request: Request, who: AdminForm, user_id: int):
    return _change(request, who, lambda s: users.disable(s, _target(s, who, user_id, not_self=True)))
