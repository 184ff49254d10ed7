"""`jifen user …`: console users. Passwords are read from a hidden prompt or, for scripts, one line of
standard input (--password-stdin) — never from the command line, where `ps` and shell history would keep
them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from jifen.clikit import ProgramOpt, fail, out, sessions
from jifen.db import run_in_transaction
from jifen.errors import JifenError

user_app = typer.Typer(help="Console users (sign-in to /console).", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
StdinOpt = Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        fail("no password given: no terminal to ask on (use --password-stdin)")
    else:
        try:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        except typer.Abort:
            fail("no password given")
    if not password:
        fail("no password given")
    return password


def _run(work):
    """One transaction; a business error is one line on stderr and exit 1, with nothing written."""
    try:
        return run_in_transaction(sessions(), work)
    except JifenError as exc:
        fail(exc.message)


@user_app.command("create")
def user_create(username: Annotated[str, typer.Option(help="sign-in name (letters, digits, . _ -)")],
                role: Annotated[str, typer.Option(help="admin, operator, customer_service, auditor, finance, pos")],
                name: Annotated[str, typer.Option(help="display name")] = "",
                program: ProgramOpt = "default", password_stdin: StdinOpt = False):
    """Create a console user with a role; the password is asked for (or read from stdin)."""
    from jifen.programs.service import get_program
    from jifen.security.service import ROLES
    from jifen.security.users import check_password_policy, create_user, normal_username

    try:  # the cheap checks before a password is asked for
        normal_username(username)
        if role not in ROLES:
            fail(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        password = _read_password(password_stdin)
        check_password_policy(username, password)
    except JifenError as exc:
        fail(exc.message)
    user_id = _run(lambda s: create_user(s, get_program(s, program), username, role, password, display_name=name).id)
    out.print(f"console user #{user_id} {username.strip().lower()} ({role}) created in {program}")


@user_app.command("disable")
def user_disable(username: str, program: ProgramOpt = "default"):
    """Disable a console user: no more sign-ins, every session ends."""
    from jifen.programs.service import get_program
    from jifen.security.users import disable, get_user

    _run(lambda s: disable(s, get_user(s, get_program(s, program).id, username)))
    out.print(f"console user {username} disabled; their sessions are ended")


@user_app.command("passwd")
def user_passwd(username: str, program: ProgramOpt = "default", password_stdin: StdinOpt = False):
    """Set a console user's password (ends their sessions and clears a lockout)."""
    from jifen.programs.service import get_program
    from jifen.security.users import get_user, set_password

    with sessions()() as s:  # an unknown user fails before the password is asked for
        try:
            get_user(s, get_program(s, program).id, username)
        except JifenError as exc:
            fail(exc.message)
    password = _read_password(password_stdin)
    _run(lambda s: set_password(s, get_user(s, get_program(s, program).id, username), password))
    out.print(f"password of {username} changed; their sessions are ended")


@user_app.command("list")
def user_list(program: ProgramOpt = "default"):
    """The programme's console users."""
    from sqlalchemy import select

    from jifen.db import utcnow
    from jifen.programs.service import get_program
    from jifen.security.users import ConsoleUser

    now = utcnow()
    with sessions()() as s:
        try:
            prog = get_program(s, program)
        except JifenError as exc:
            fail(exc.message)
        rows = s.scalars(select(ConsoleUser).where(ConsoleUser.program_id == prog.id).order_by(ConsoleUser.username))
        table = Table(title=f"console users of {program}")
        for col in ("id", "username", "name", "role", "state", "last sign-in (UTC)"):
            table.add_column(col)
        for u in rows:
            state = "disabled" if u.disabled_at else "locked" if u.locked(now) else "active"
            table.add_row(str(u.id), u.username, u.display_name, u.role, state,
                          f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "")
    out.print(table)


def demo_admin(program: str = "default") -> None:
    """For `jifen up`: the first run creates the console user `admin` and prints its password once."""
    from jifen.programs.service import get_program
    from jifen.security.users import DEMO_ADMIN, ensure_demo_admin

    password = _run(lambda s: ensure_demo_admin(s, get_program(s, program)))
    if password:
        out.print(f"Console sign-in: user [bold]{DEMO_ADMIN}[/], password below — shown once, keep it safe "
                  f"(change it with `jifen user passwd {DEMO_ADMIN}`):")
        print(password)
    else:
        out.print(f"Console sign-in: user [bold]{DEMO_ADMIN}[/] with the password printed when it was created "
                  f"(forgot it? `jifen user passwd {DEMO_ADMIN}`)")


@apikey_app.command("create")
def apikey_create(role: Annotated[str, typer.Option(help="admin, operator, customer_service, auditor, finance, pos")],
                  name: Annotated[str, typer.Option(help="who or what uses the key")] = "cli",
                  program: ProgramOpt = "default"):
    """Create an API key; the secret is printed once and never stored."""
    from jifen.programs.service import get_program
    from jifen.security.service import create_api_key

    def work(s):
        key, secret = create_api_key(s, get_program(s, program), role, name)
        return key.id, secret

    key_id, secret = run_in_transaction(sessions(), work)
    out.print(f"API key #{key_id} ({role}, {name}) — shown once, keep it safe:")
    print(secret)

@apikey_app.command("revoke")
def apikey_revoke(key_id: int):
    """Revoke an API key."""
    from jifen.security.service import revoke_api_key

    if not run_in_transaction(sessions(), lambda s: revoke_api_key(s, key_id)):
        fail(f"no active API key #{key_id}")
    out.print(f"API key #{key_id} revoked")
