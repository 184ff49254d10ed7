"""SQLite backups with sqlite3's online backup API: the copy is one read transaction of the live file (WAL
lets the server go on writing meanwhile), and a restore writes the pages back through a connection to the
target, so SQLite's own locking and WAL stay in charge (never a file copied over an open database)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from jifen.backup.manifest import Manifest, snapshot
from jifen.errors import InvalidRequest


def database_path(url: str) -> Path:
    name = make_url(url).database
    if not name or name == ":memory:":
        raise InvalidRequest(f"{url} is not a SQLite file", code="not_a_file")
    return Path(name)


def dump(url: str, to: Path) -> Manifest:
    source = database_path(url)
    if not source.is_file():
        raise InvalidRequest(f"no SQLite database at {source}", code="database_missing")
    part = to.with_name(to.name + ".part")
    part.unlink(missing_ok=True)
    with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(part)) as dst:
        src.backup(dst)  # all pages in one step: one read transaction, one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        manifest = snapshot(dst.cursor(), "sqlite")  # read from the copy itself: exactly what it holds
    os.replace(part, to)
    return manifest


def has_tables(url: str) -> bool:
    path = database_path(url)
    if not path.exists() or path.stat().st_size == 0:
        return False
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])


def restore(dump_file: Path, url: str) -> None:
    target = database_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(f"file:{dump_file}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(target, timeout=30)) as dst:
        src.backup(dst)
