"""Console users: argon2id passwords, sign-in with one answer for every failure, per-account lockout,
sessions (digest-only storage, cookie flags, idle and absolute expiry, sign-out, disabling), CSRF on
every console form, roles on console pages, the user admin page and `jifen user …`."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from jifen.db import run_in_transaction
from jifen.errors import Conflict, InvalidRequest
from jifen.programs.service import get_program
from jifen.rules.models import RuleSet
from jifen.security import sessions, users
from jifen.security.sessions import ConsoleSession
from jifen.security.users import ConsoleUser
from tests.security.test_authorisation_matrix import all_routes
from tests.support.console_login import PASSWORD, add_user, console_as, csrf_of, sign_in
from tests.support.intake import configure
from tests.test_cli import jifen

T0 = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)


def _user(app, username) -> ConsoleUser:
    with app.state.sessions() as s:
        return users.find_user(s, get_program(s, "default").id, username)


def _error_of(html: str) -> str:
    found = re.search(r'<p class="error"[^>]*>(.*?)</p>', html, re.S)
    return found.group(1) if found else ""


# Passwords and users ---------------------------------------------------------------------------------

def test_passwords_are_argon2id_and_only_the_right_one_matches():
    stored = users.hash_password("a long enough secret")
    assert stored.startswith("$argon2id$") and "a long enough secret" not in stored
    assert users.password_matches(stored, "a long enough secret")
    assert not users.password_matches(stored, "a long enough secreT")
    assert not users.password_matches("not a hash", "a long enough secret")
    assert users.hash_password("a long enough secret") != stored  # salted


def test_password_policy_and_bad_users_change_nothing(factory):
    def make(username, role, password):
        return run_in_transaction(factory, lambda s: users.create_user(s, get_program(s, "default"), username, role,
                                                                      password))

    with pytest.raises(InvalidRequest, match="at least 10"):
        make("alice", "operator", "short-pw")
    with pytest.raises(InvalidRequest, match="may not be the username"):
        make("alice.wang1", "operator", "Alice.Wang1")
    with pytest.raises(InvalidRequest, match="unknown role"):
        make("alice", "superuser", PASSWORD)
    with pytest.raises(InvalidRequest, match="username"):
        make("alice wang", "operator", PASSWORD)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(ConsoleUser)) == 0
    make("Alice", "operator", PASSWORD)
    with pytest.raises(Conflict):
        make("alice", "auditor", PASSWORD)  # usernames are unique per programme, whatever the case
    with factory() as s:
        assert [(u.username, u.role) for u in s.scalars(select(ConsoleUser))] == [("alice", "operator")]


def test_sign_in_counts_failures_locks_and_rehashes(factory):
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # weaker than today's defaults

    def setup(s):
        u = users.create_user(s, get_program(s, "default"), "wang", "operator", PASSWORD, now=T0)
        u.password_hash = old.hash(PASSWORD)
        return u.id

    uid = run_in_transaction(factory, setup)

    def attempt(password, now):
        return run_in_transaction(factory, lambda s: users.sign_in(s, get_program(s, "default").id, "wang",
                                                                   password, now).reason)

    assert attempt(PASSWORD, T0) == "ok"
    with factory() as s:
        user = s.get(ConsoleUser, uid)
        assert user.password_hash.startswith("$argon2id$") and not users.hasher().check_needs_rehash(user.password_hash)
        assert user.last_login_at == T0
    assert attempt("wrong password!", T0) == "wrong_password"
    assert attempt(PASSWORD, T0) == "ok"  # a success clears the count
    assert [attempt("wrong password!", T0) for _ in range(5)] == ["wrong_password"] * 5
    locked_at = T0 + dt.timedelta(minutes=1)
    assert attempt(PASSWORD, locked_at) == "locked"  # the fifth wrong one in a row locked it: even the right one
    assert attempt(PASSWORD, T0 + dt.timedelta(minutes=14)) == "locked"
    assert attempt(PASSWORD, T0 + dt.timedelta(minutes=16)) == "ok"
    assert run_in_transaction(factory, lambda s: users.sign_in(s, get_program(s, "default").id, "nobody", PASSWORD,
                                                               T0).reason) == "unknown"


# Sign-in over HTTP -------------------------------------------------------------------------------------

def test_one_answer_for_every_failed_sign_in(sqlite_app):
    add_user(sqlite_app, "operator", "wang")
    add_user(sqlite_app, "operator", "gone")
    run_in_transaction(sqlite_app.state.sessions, lambda s: users.disable(s, users.get_user(s, 1, "gone")))
    locked = add_user(sqlite_app, "operator", "locked")
    run_in_transaction(sqlite_app.state.sessions, lambda s: s.execute(update(ConsoleUser).where(
        ConsoleUser.username == locked).values(locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))))
    with TestClient(sqlite_app) as client:
        answers = {(r.status_code, _error_of(r.text)) for r in (
            sign_in(client, "nobody"), sign_in(client, "wang", "wrong password"), sign_in(client, "gone"),
            sign_in(client, "locked"), sign_in(client, "wang", ""))}
        assert answers == {(401, "用户名或密码错误 (连续多次错误后账号将暂时锁定)")}
        assert "jifen_console" not in client.cookies
        assert sign_in(client, "WANG").status_code == 303  # usernames are case-insensitive


def test_lockout_after_five_failures_over_http(app):
    add_user(app, "operator", "wang")
    with TestClient(app) as client:
        codes = [sign_in(client, "wang", f"wrong password {i}").status_code for i in range(5)]
        assert codes == [401] * 5
        assert sign_in(client, "wang").status_code == 401  # locked: the right password is refused too
    user = _user(app, "wang")
    assert user.locked_until is not None and user.failed_logins == 0
    assert dt.timedelta(minutes=14) < user.locked_until - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)
    with app.state.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(ConsoleSession)) == 0


def test_session_cookie_flags_and_only_a_digest_is_stored(sqlite_app):
    add_user(sqlite_app, "operator", "wang")
    with TestClient(sqlite_app) as client:
        r = sign_in(client, "wang")
        assert r.status_code == 303 and r.headers["location"] == "/console"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("jifen_console="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/console"} <= flags and "secure" not in flags
        token = client.cookies["jifen_console"]
    with sqlite_app.state.read_sessions() as s:
        row = s.scalar(select(ConsoleSession))
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.token_hash, row.csrf_token)
    with TestClient(sqlite_app, base_url="https://testserver") as client:
        r = sign_in(client, "wang")
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("jifen_console="))
        assert "secure" in cookie.lower()


def test_sessions_end_when_idle_or_too_old(factory):
    uid = run_in_transaction(factory, lambda s: users.create_user(s, get_program(s, "default"), "wang", "operator",
                                                                  PASSWORD).id)
    _, token = run_in_transaction(factory, lambda s: sessions.start(s, s.get(ConsoleUser, uid), T0))

    def live(now):
        with factory() as s:
            return sessions.lookup(s, token, now)

    assert live(T0).user.id == uid and not live(T0).touch
    assert live(T0 + dt.timedelta(minutes=29)).touch
    assert live(T0 + dt.timedelta(minutes=31)) is None  # 30 idle minutes
    with factory() as s:
        assert sessions.lookup(s, "not-a-token", T0) is None and sessions.lookup(s, None, T0) is None
    now = T0
    while now < T0 + dt.timedelta(hours=11, minutes=40):  # in use every 20 minutes …
        now += dt.timedelta(minutes=20)
        active = live(now)
        assert active is not None
        run_in_transaction(factory, lambda s, n=now: sessions.touch(s, active.session_id, n))
    assert live(T0 + dt.timedelta(hours=11, minutes=59)) is not None
    assert live(T0 + dt.timedelta(hours=12, minutes=1)) is None  # … and still over after 12 hours


def test_idle_session_sends_back_to_sign_in_over_http(sqlite_app):
    with TestClient(sqlite_app) as client:
        console_as(client, sqlite_app, "operator")
        assert client.get("/console", follow_redirects=False).status_code == 200
        run_in_transaction(sqlite_app.state.sessions, lambda s: s.execute(update(ConsoleSession).values(
            last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31))))
        r = client.get("/console", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_sign_out_revokes_the_session(sqlite_app):
    with TestClient(sqlite_app) as client:
        token = console_as(client, sqlite_app, "operator")
        cookie = client.cookies["jifen_console"]
        assert client.post("/console/logout", data={}).status_code == 403  # sign-out is a form like any other
        assert client.get("/console", follow_redirects=False).status_code == 200
        r = client.post("/console/logout", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login"
    with TestClient(sqlite_app, cookies={"jifen_console": cookie}) as replay:  # the old cookie, kept by an attacker
        assert replay.get("/console", follow_redirects=False).status_code == 303
    with sqlite_app.state.read_sessions() as s:
        assert s.scalar(select(ConsoleSession)).revoked_at is not None


def test_disabling_or_a_new_password_ends_the_users_sessions(sqlite_app):
    with TestClient(sqlite_app) as client, TestClient(sqlite_app) as other:
        console_as(client, sqlite_app, "operator", "wang")
        sign_in(other, "wang")
        assert client.get("/console", follow_redirects=False).status_code == 200
        run_in_transaction(sqlite_app.state.sessions, lambda s: users.set_password(s, users.get_user(s, 1, "wang"),
                                                                             "a brand new password"))
        assert client.get("/console", follow_redirects=False).status_code == 303
        assert other.get("/console", follow_redirects=False).status_code == 303
        assert sign_in(client, "wang").status_code == 401
        assert sign_in(client, "wang", "a brand new password").status_code == 303
        assert client.get("/console", follow_redirects=False).status_code == 200
        run_in_transaction(sqlite_app.state.sessions, lambda s: users.disable(s, users.get_user(s, 1, "wang")))
        assert client.get("/console", follow_redirects=False).status_code == 303
        assert sign_in(client, "wang", "a brand new password").status_code == 401


def test_a_session_of_a_disabled_user_stops_even_if_not_revoked(sqlite_app):
    with TestClient(sqlite_app) as client:
        console_as(client, sqlite_app, "operator", "wang")
        run_in_transaction(sqlite_app.state.sessions, lambda s: s.execute(update(ConsoleUser).values(
            disabled_at=dt.datetime.now(dt.UTC))))  # (as if written by hand, without revoking)
        assert client.get("/console", follow_redirects=False).status_code == 303


# CSRF ---------------------------------------------------------------------------------------------------

def _versions(app) -> int:
    with app.state.read_sessions() as s:
        return s.scalar(select(func.count()).select_from(RuleSet))


def test_console_posts_need_the_sessions_csrf_token(sqlite_app):
    now = dt.datetime.now(dt.UTC)
    configure(sqlite_app.state.sessions, now=now - dt.timedelta(days=2))
    draft = "rules:\n- code: base\n  events: [purchase]\n  award: {per_yuan: 3}\n"
    form = {"text": draft, "effective": (now + dt.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M"), "action": "publish"}
    before = _versions(sqlite_app)
    with TestClient(sqlite_app) as other:
        foreign = console_as(other, sqlite_app, "operator", "li")  # a valid token, of another session
    with TestClient(sqlite_app) as client:
        token = console_as(client, sqlite_app, "operator", "wang")
        for bad in ({}, {"csrf": ""}, {"csrf": token[:-1] + ("A" if token[-1] != "A" else "B")}, {"csrf": foreign}):
            r = client.post("/console/rules/draft", data=form | bad, follow_redirects=False)
            assert r.status_code == 403 and "未作任何变更" in r.text
        assert _versions(sqlite_app) == before
        r = client.post("/console/rules/draft", data=form | {"csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and _versions(sqlite_app) == before + 1


def test_every_console_post_route_checks_csrf(sqlite_app):
    """Every POST under /console (from the app's route table, so a new one is covered) answers 403 to a
    signed-in admin's form without the token, and changes nothing."""
    routes = sorted(route.path for route in all_routes(sqlite_app.routes)
                    if route.path.startswith("/console") and "POST" in route.methods)
    assert {"/console/logout", "/console/rules/draft", "/console/notifications/replay", "/console/users"} <= set(routes)
    with TestClient(sqlite_app) as client:
        console_as(client, sqlite_app, "admin")
        for path in routes:
            url = path.replace("{user_id}", "1")
            r = client.post(url, data={"delivery_id": "1", "role": "auditor", "password": "x" * 12, "username": "eve",
                                       "text": "rules: []", "effective": "2030-01-01T00:00", "action": "publish"})
            assert r.status_code == 403, path
    assert _user(sqlite_app, "eve") is None and _user(sqlite_app, "admin").role == "admin"


def test_the_sign_in_form_has_its_own_token(sqlite_app):
    add_user(sqlite_app, "operator", "wang")
    with TestClient(sqlite_app) as client:
        page = client.get("/console/login")
        token = csrf_of(page.text)
        cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith("jifen_login_csrf="))
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        forged = client.post("/console/login", data={"username": "wang", "password": PASSWORD},
                             follow_redirects=False)  # a cross-site form: no token
        assert forged.status_code == 403
        client.cookies.delete("jifen_login_csrf")
        no_cookie = client.post("/console/login", data={"username": "wang", "password": PASSWORD, "csrf": token},
                                follow_redirects=False)  # a token without its cookie (SameSite keeps it home)
        assert no_cookie.status_code == 403
        assert "jifen_console" not in client.cookies
        assert sign_in(client, "wang").status_code == 303
    with sqlite_app.state.read_sessions() as s:
        assert s.scalar(select(func.count()).select_from(ConsoleSession)) == 1


# Roles and the user admin page ------------------------------------------------------------------------

def test_roles_on_console_pages(sqlite_app):
    with TestClient(sqlite_app) as client:
        token = console_as(client, sqlite_app, "operator")
        assert "/console/users" not in client.get("/console").text
        assert client.get("/console/users").status_code == 403
        r = client.post("/console/users", data={"username": "eve", "role": "admin", "password": PASSWORD,
                                                "csrf": token})
        assert r.status_code == 403 and "你的角色无权执行此操作" in r.text
    with TestClient(sqlite_app) as client:
        token = console_as(client, sqlite_app, "customer_service")
        r = client.post("/console/notifications/replay", data={"delivery_id": "1", "csrf": token})
        assert r.status_code == 403
    with TestClient(sqlite_app) as client:
        console_as(client, sqlite_app, "auditor")
        assert client.get("/console/users").status_code == 403
        assert client.get("/console/members").status_code == 200
    assert _user(sqlite_app, "eve") is None


def test_user_admin_page(sqlite_app):
    with TestClient(sqlite_app) as admin:
        token = console_as(admin, sqlite_app, "admin", "boss")
        page = admin.get("/console/users")
        assert page.status_code == 200 and "boss" in page.text and "超级管理员" in page.text
        made = admin.post("/console/users", data={"username": "Wang", "display_name": "小王", "role": "operator",
                                                  "password": PASSWORD, "csrf": token}, follow_redirects=False)
        assert made.status_code == 303
        wang = _user(sqlite_app, "wang")
        assert (wang.role, wang.display_name) == ("operator", "小王")
        weak = admin.post("/console/users", data={"username": "li", "role": "operator", "password": "short",
                                                  "csrf": token})
        assert weak.status_code == 422 and "at least 10" in weak.text and _user(sqlite_app, "li") is None
        dup = admin.post("/console/users", data={"username": "wang", "role": "auditor", "password": PASSWORD,
                                                 "csrf": token})
        assert dup.status_code == 409 and _user(sqlite_app, "wang").role == "operator"
        with TestClient(sqlite_app) as staff:
            assert sign_in(staff, "wang").status_code == 303
            assert admin.post(f"/console/users/{wang.id}/role", data={"role": "auditor", "csrf": token}).status_code == 200
            assert _user(sqlite_app, "wang").role == "auditor"
            assert "审计" in staff.get("/console").text  # the role applies at once
            r = admin.post(f"/console/users/{wang.id}/password", data={"password": "another password", "csrf": token})
            assert r.status_code == 200
            assert staff.get("/console", follow_redirects=False).status_code == 303  # signed out everywhere
            assert sign_in(staff, "wang", "another password").status_code == 303
            assert admin.post(f"/console/users/{wang.id}/disable", data={"csrf": token}).status_code == 200
            assert staff.get("/console", follow_redirects=False).status_code == 303
            assert "已停用" in admin.get("/console/users").text
        me = _user(sqlite_app, "boss")
        refused = admin.post(f"/console/users/{me.id}/disable", data={"csrf": token})
        assert refused.status_code == 422 and _user(sqlite_app, "boss").disabled_at is None
        assert admin.post(f"/console/users/{me.id}/role", data={"role": "pos", "csrf": token}).status_code == 422
        assert admin.post("/console/users/999/disable", data={"csrf": token}).status_code == 404
        assert admin.post(f"/console/users/{wang.id}/role", data={"role": "root", "csrf": token}).status_code == 422
        assert "Console users" in admin.get("/console/users?lang=en").text


# CLI ------------------------------------------------------------------------------------------------------

@pytest.fixture
def cli_db(tmp_path, sqlite_template):
    path = tmp_path / "cli.db"
    shutil.copy(sqlite_template, path)
    return path




def _cli_users(db) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT username, role, disabled_at IS NOT NULL FROM console_users ORDER BY id").fetchall()


def test_user_commands(cli_db):
    made = jifen(cli_db, "user", "create", "--username", "wang", "--role", "operator", "--name", "小王",
                 "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "wang" in made.stdout and PASSWORD not in made.stdout
    listed = jifen(cli_db, "user", "list")
    assert listed.returncode == 0 and "wang" in listed.stdout and "operator" in listed.stdout and "active" in listed.stdout
    changed = jifen(cli_db, "user", "passwd", "wang", "--password-stdin", stdin="a brand new password\n")
    assert changed.returncode == 0, changed.stderr
    disabled = jifen(cli_db, "user", "disable", "wang")
    assert disabled.returncode == 0 and _cli_users(cli_db) == [("wang", "operator", 1)]
    assert "disabled" in jifen(cli_db, "user", "list").stdout


@pytest.mark.parametrize("args, stdin, message", [
    (["user", "create", "--username", "li", "--role", "root", "--password-stdin"], PASSWORD, "unknown role"),
    (["user", "create", "--username", "li", "--role", "operator", "--password-stdin"], "short", "at least 10"),
    (["user", "create", "--username", "li", "--role", "operator", "--password-stdin"], "", "no password"),
    (["user", "create", "--username", "li", "--role", "operator"], "", "no password"),  # no terminal to ask on
    (["user", "create", "--username", "l i", "--role", "operator", "--password-stdin"], PASSWORD, "username"),
    (["user", "create", "--username", "wang", "--role", "auditor", "--password-stdin"], PASSWORD, "already exists"),
    (["user", "create", "--username", "li", "--role", "operator", "--program", "nope", "--password-stdin"], PASSWORD,
     "nope"),
    (["user", "disable", "nobody"], "", "no console user"),
    (["user", "passwd", "nobody", "--password-stdin"], PASSWORD, "no console user"),
    (["user", "passwd", "wang", "--password-stdin"], "wang", "at least 10"),
])
def test_user_command_bad_input(cli_db, args, stdin, message):
    assert jifen(cli_db, "user", "create", "--username", "wang", "--role", "operator", "--password-stdin",
                 stdin=PASSWORD).returncode == 0
    before = _cli_users(cli_db)
    done = jifen(cli_db, *args, stdin=stdin + "\n" if stdin else "")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], done.stderr
    assert _cli_users(cli_db) == before


def test_no_password_on_the_command_line(cli_db):
    done = jifen(cli_db, "user", "create", "--username", "li", "--role", "operator", "--password", PASSWORD)
    assert done.returncode != 0 and _cli_users(cli_db) == []


def test_first_run_admin_is_made_once(cli_db, monkeypatch, capsys):
    from jifen.db import make_engine, make_sessionmaker
    from jifen.security import cli

    engine = make_engine(f"sqlite:///{cli_db}")
    monkeypatch.setattr(cli, "sessions", lambda: make_sessionmaker(engine))
    cli.demo_admin()
    first = capsys.readouterr().out
    cli.demo_admin()
    second = capsys.readouterr().out
    password = first.strip().splitlines()[-1]
    assert len(password) >= 10 and password not in second and "admin" in second
    with make_sessionmaker(engine)() as s:
        user = users.sign_in(s, 1, "admin", password, dt.datetime.now(dt.UTC)).user
        assert user is not None and user.role == "admin"
        assert s.scalar(select(func.count()).select_from(ConsoleUser)) == 1
    engine.dispose()
