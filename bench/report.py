"""Benchmark results into docs/benchmarks.md: each bench owns sections there, rewritten on every run
between markers and dated with the machine that produced them (figures from different machines or
loads are not comparable, so each table says where it comes from).

    from report import replace_section
    replace_section("Bulk intake, PostgreSQL", markdown, pg_url=url)
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine(pg_url: str | None = None) -> str:
    """'2 cores, 7.8 GiB RAM, Python 3.11.7, SQLite 3.40.1[, PostgreSQL 15.5]'."""
    parts = [f"{os.cpu_count()} cores"]
    try:
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
        parts.append(f"{kib / 2**20:.1f} GiB RAM")
    except (OSError, StopIteration):  # not Linux: the RAM is left out rather than guessed
        pass
    parts += [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
    if pg_url:
        import psycopg
        from sqlalchemy.engine import make_url

        dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn:
            parts.append(f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0].split()[0]}")
    return ", ".join(parts)


def replace_section(title: str, markdown: str, *, pg_url: str | None = None, path: Path = DOC) -> None:
    """Rewrite the section `title` (a `##` heading, with the date and the machine) with `markdown`;
    appended at the end the first time. Text outside the markers is left alone."""
    start, end = f"<!-- bench: {title} -->", f"<!-- /bench: {title} -->"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"{start}\n## {title} — latest run, {when}, {machine(pg_url)}\n\n{markdown.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
