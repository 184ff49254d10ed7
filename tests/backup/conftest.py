"""A restore target of the test's own engine: a fresh SQLite path, or a PostgreSQL database named for the
test (created by the restore itself, dropped here)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, _pg_dsn


@pytest.fixture
def target_url(db_url, tmp_path):
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"jifen_test_restore_{uuid.uuid4().hex[:10]}"
    yield make_url(db_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
