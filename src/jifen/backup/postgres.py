"""PostgreSQL backups with its own tools: `pg_dump -Fc` inside a snapshot exported by the transaction that
reads the chain heads (so the manifest and the dump see the same instant while the server writes on), and
`pg_restore` (parallel) into a database created if missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from jifen.backup.manifest import Manifest, snapshot
from jifen.errors import InvalidRequest, JifenError


def _libpq(url: str | URL, database: str | None = None) -> tuple[str, dict[str, str]]:
    """A libpq URI for the tools and psycopg, and the environment carrying the password (never on a command
    line, where `ps` shows it)."""
    u = make_url(url)
    env = os.environ | ({"PGPASSWORD": u.password} if u.password else {})
    u = u.set(drivername="postgresql", password=None, database=database or u.database)
    return u.render_as_string(hide_password=False), env


def _tool(name: str, args: list[str], env: dict[str, str]) -> None:
    path = shutil.which(name)
    if not path:
        raise JifenError(f"{name} not found: install the PostgreSQL client of the server's major version")
    done = subprocess.run([path, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        reason = next((line for line in done.stderr.splitlines() if line.strip()), f"exit {done.returncode}")
        raise JifenError(f"{name} failed: {reason.strip()}")


def dump(url: str, to: Path) -> Manifest:
    uri, env = _libpq(url)
    part = to.with_name(to.name + ".part")
    with psycopg.connect(uri, password=env.get("PGPASSWORD")) as conn:
        conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot()")
            snap = cur.fetchone()[0]  # type: ignore[index]  # (one row, always)
            manifest = snapshot(cur, "postgresql")
        # pg_dump takes the snapshot while this transaction, which exported it, stays open.
        _tool("pg_dump", ["-Fc", "--snapshot", snap, "-f", str(part), "-d", uri], env)
    os.replace(part, to)
    return manifest


def _ensure_database(url: str) -> None:
    """Create the target database if it does not exist (a restore drill into a fresh one)."""
    name = make_url(url).database
    if not name:
        raise InvalidRequest("the PostgreSQL URL names no database", code="invalid_url")
    admin, env = _libpq(url, "postgres")
    with psycopg.connect(admin, password=env.get("PGPASSWORD"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def has_tables(url: str) -> bool:
    uri, env = _libpq(url)
    try:
        with psycopg.connect(uri, password=env.get("PGPASSWORD")) as conn:
            return bool(conn.execute("SELECT count(*) FROM information_schema.tables "
                                     "WHERE table_schema = 'public'").fetchone()[0])  # type: ignore[index]
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            return False
        raise


def restore(dump_file: Path, url: str, jobs: int) -> None:
    _ensure_database(url)
    uri, env = _libpq(url)
    with psycopg.connect(uri, password=env.get("PGPASSWORD"), autocommit=True) as conn:
        # Forced over a database with tables: it becomes exactly the backup, nothing of before left beside it.
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    _tool("pg_restore", ["--no-owner", "--exit-on-error", "-j", str(max(1, jobs)), "-d", uri, str(dump_file)], env)

