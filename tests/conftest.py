"""Database fixtures: every test gets a fresh database on SQLite and, where reachable, PostgreSQL.

PostgreSQL: JIFEN_TEST_POSTGRES_URL (default: the local server's `test` database) is used only to
create a scratch database per test session, which is dropped at the end. With CI=true an unreachable
PostgreSQL fails the run instead of skipping its tests.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jifen.api import create_app
from jifen.db import make_engine, make_sessionmaker, run_in_transaction
from jifen.ledger import operations as ops
from jifen.ledger.engine import member_accounts
from jifen.ledger.verify import verify
from jifen.members.service import create_member, get_member
from jifen.models import metadata
from jifen.programs.service import ensure_default_program, get_program, get_wallet
from jifen.security.service import create_api_key
from jifen.setup import init_database

# Tests hammer the same members and keys far faster than any client should: the rate limits get out of
# the way here, and test_rate_limits sets tight ones of its own.
for _name in ("JIFEN_KEY_RATE", "JIFEN_MEMBER_RATE", "JIFEN_AUTH_FAILURES"):
    os.environ.setdefault(_name, "1000000/minute")

# Fixed test keys: one AES key that encrypts, an SM4 key still accepted for reading (rotation tests).
os.environ.setdefault("JIFEN_DATA_KEYS", "t1:aes:" + "A" * 43 + "=")
os.environ.setdefault("JIFEN_LOOKUP_KEY", "B" * 43 + "=")

PG_ADMIN_URL = os.environ.get("JIFEN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_reachable() -> str | None:
    try:
        psycopg.connect(_pg_dsn(PG_ADMIN_URL), connect_timeout=3).close()
        return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def pg_url():
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"jifen_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    init_database(url)
    yield url
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "jifen.db"
    init_database(f"sqlite:///{path}")
    return path


def truncate_all(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    run_in_transaction(make_sessionmaker(engine), ensure_default_program)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, sqlite_template):
    """A fresh, migrated database with the default programme, on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "jifen.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        truncate_all(url)
        yield url


@pytest.fixture
def pg_only_url(pg_url):
    truncate_all(pg_url)
    return pg_url


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine):
    return make_sessionmaker(engine)


NOW = dt.datetime(2026, 6, 1, 4, 0, tzinfo=dt.UTC)


def m(sc: ops.Scope, member_id: str):
    """A member looked up inside the operation's own transaction."""
    return get_member(sc.session, sc.program, member_id)


class Ledger:
    """Test helper: one operation per transaction, as the API does, at a fixed clock."""

    def __init__(self, factory, now=NOW, program="default"):
        self.factory, self.now, self.program = factory, now, program

    def run(self, fn, wallet=None, actor="tester"):
        def tx(s):
            program = get_program(s, self.program)
            return fn(ops.Scope(s, program, get_wallet(s, program, wallet), self.now, actor), s)

        return run_in_transaction(self.factory, tx)

    def member(self, member_id):
        with self.factory() as s:
            return get_member(s, get_program(s, self.program), member_id)

    def add_members(self, *ids):
        return run_in_transaction(self.factory, lambda s: [create_member(s, get_program(s, self.program), i)
                                                           for i in ids])

    def balances(self, member_id, wallet=None) -> dict[str, int]:
        m = self.member(member_id)
        with self.factory() as s:
            w = get_wallet(s, get_program(s, self.program), wallet)
            return {k: a.balance for k, a in member_accounts(s, m.id, w.id).items()}

    def verify(self):
        with self.factory() as s:
            return verify(s)


@pytest.fixture
def ledger(factory):
    return Ledger(factory)


@pytest.fixture
def app(db_url):
    application = create_app(db_url)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def sqlite_app(sqlite_template, tmp_path):
    """The app on a fresh copy of the migrated SQLite template (for tests that need no PostgreSQL twin)."""
    path = tmp_path / "app.db"
    shutil.copy(sqlite_template, path)
    application = create_app(f"sqlite:///{path}")
    yield application
    application.state.engine.dispose()


def api_key(app, role):
    """A fresh API key of the role for the default programme."""
    return run_in_transaction(app.state.sessions, lambda s: create_api_key(s, get_program(s, "default"), role, role))[1]


def keyed(client):
    """The test client gives each /v1 write sent without an Idempotency-Key a fresh one, as a well-behaved app
    does (the server requires one on every write); a test of the key itself sets its own."""
    def add_key(request):
        if (request.method in ("POST", "PUT", "DELETE", "PATCH") and request.url.path.startswith("/v1/")
                and "idempotency-key" not in request.headers):
            request.headers["Idempotency-Key"] = uuid.uuid4().hex

    client.event_hooks["request"].append(add_key)
    return client


NATS_URL = os.environ.get("JIFEN_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture(scope="session")
def nats_url():
    """The local NATS server with JetStream (a service of the machine, like PostgreSQL): required in CI."""
    import socket

    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=3).close()
    except OSError as exc:
        if IN_CI:
            pytest.fail(f"NATS is required in CI but unreachable at {NATS_URL}: {exc}")
        pytest.skip(f"NATS unreachable: {exc}")
    return NATS_URL
