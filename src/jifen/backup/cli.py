"""`jifen backup` and `jifen restore`: the whole database to a file and back, proven after the restore."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from jifen.clikit import err, fail, out, took
from jifen.config import get_settings


def backup(to: Annotated[Path, typer.Option("--to", help="the backup file to write (its manifest goes beside it)")]):
    """Back up the database while it serves: SQLite's online backup API, or pg_dump -Fc for PostgreSQL, with a
    manifest (chain heads, entry count, SHA-256) beside the file."""
    from jifen.backup.manifest import manifest_path
    from jifen.backup.service import backup as run

    began = time.monotonic()
    manifest = run(get_settings().database_url, to)
    out.print(f"backup written: {to} ({manifest.bytes / 1e6:.1f} MB, {manifest.entries:,} entries) in "
              f"{took(time.monotonic() - began)}; manifest {manifest_path(to)}; chain heads: {manifest.head_line()}",
              markup=False, highlight=False, soft_wrap=True)


def restore(source: Annotated[Path, typer.Option("--from", help="a backup written by `jifen backup`")],
            to: Annotated[str | None, typer.Option(help="database URL to restore into [default: the configured "
                                                        "one]; a missing PostgreSQL database is created")] = None,
            force: Annotated[bool, typer.Option(help="replace the contents of a database that has tables")] = False,
            processes: Annotated[int | None, typer.Option(min=1, help="processes for pg_restore and the verify "
                                                                       "[default: one per CPU]")] = None):
    """Restore a backup (stop the server first), then verify the ledger and compare each programme's chain head
    with the manifest's; exit 1 if anything differs."""
    from jifen.backup.service import restore as run

    url = to or get_settings().database_url
    result = run(source, url, force=force, processes=processes,
                 progress=lambda step: err.print(f"{step} …", markup=False, highlight=False))
    timing = (f"restored in {took(result.restore_seconds)}, verified in {took(result.verify_seconds)} "
              f"(total {took(result.restore_seconds + result.verify_seconds)})")
    for problem in result.problems[1:20]:
        err.print(f"  also: {problem}", markup=False, highlight=False)
    if result.problems:
        fail(f"restored, but the ledger is broken at {result.problems[0]} ({timing})")
    if not result.heads_match:
        fail(f"restored, but the chain heads differ from the backup's: {result.found.head_line()} "
             f"({result.found.entries:,} entries) instead of {result.manifest.head_line()} "
             f"({result.manifest.entries:,} entries)")
    out.print(f"restore OK: {result.found.entries:,} entries, ledger verified, chain heads equal to the backup's "
              f"({result.found.head_line()}); {timing}", markup=False, highlight=False, soft_wrap=True)
