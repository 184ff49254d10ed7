"""Backup and restore of the whole database, on either engine, and the proof after a restore: every ledger
invariant verified and each programme's chain head equal to the one the manifest recorded at backup time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from jifen.backup import manifest as mf
from jifen.backup import postgres, sqlite
from jifen.db import make_engine, make_read_sessionmaker, make_sessionmaker, run_in_transaction, utcnow
from jifen.errors import Conflict, InvalidRequest
from jifen.ledger.verify import save_checkpoints, verify_ledger


def engine_of(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise InvalidRequest(f"cannot back up or restore a {backend} database", code="unsupported_database")
    return backend


def backup(url: str, to: Path) -> mf.Manifest:
    """Dump the database to `to` (written aside, then renamed: never a half file there) and seal its manifest."""
    if to.exists():
        raise Conflict(f"{to} exists: a backup is never overwritten", code="backup_exists")
    if not to.parent.is_dir():
        raise InvalidRequest(f"no directory {to.parent}", code="invalid_path")
    manifest = sqlite.dump(url, to) if engine_of(url) == "sqlite" else postgres.dump(url, to)
    mf.seal(manifest, to)
    return manifest


@dataclass
class Restored:
    manifest: mf.Manifest
    found: mf.Manifest  # what the restored database holds
    restore_seconds: float
    verify_seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def heads_match(self) -> bool:
        return self.found.heads == self.manifest.heads and self.found.entries == self.manifest.entries

    @property
    def ok(self) -> bool:
        return not self.problems and self.heads_match


def restore(dump: Path, url: str, *, force: bool = False, processes: int | None = None,
            progress: Callable[[str], None] = lambda _: None) -> Restored:
    """Restore `dump` into the database at `url` (refusing one with tables unless `force`), then verify it.
    Every check on the input comes before the first change."""
    manifest = mf.load(dump)
    engine = engine_of(url)
    if manifest.engine != engine:
        raise InvalidRequest(f"a {manifest.engine} backup restores to {manifest.engine}, not to {engine}",
                             code="engine_mismatch")
    side = sqlite if engine == "sqlite" else postgres
    if side.has_tables(url) and not force:
        raise Conflict("the target database is not empty (it has tables): --force replaces its contents",
                       code="target_not_empty")
    progress(f"restoring {manifest.entries:,} entries ({manifest.bytes / 1e6:.1f} MB)")
    began = time.monotonic()
    if engine == "sqlite":
        sqlite.restore(dump, url)
    else:
        postgres.restore(dump, url, jobs=min(4, processes or os.cpu_count() or 1))
    restored = time.monotonic() - began
    progress("verifying the ledger and comparing the chain heads")
    began = time.monotonic()
    db = make_engine(url)
    try:
        with make_read_sessionmaker(db)() as s:
            report = verify_ledger(s, processes=processes or os.cpu_count() or 1)
            found = mf.snapshot(s.connection().connection.cursor(), engine)
        if not report.problems:  # as `jifen ledger verify` does: the next verify starts from here
            run_in_transaction(make_sessionmaker(db), lambda s: save_checkpoints(s, report.ends, utcnow()))
    finally:
        db.dispose()
    return Restored(manifest, found, restored, time.monotonic() - began, [str(p) for p in report.problems])
