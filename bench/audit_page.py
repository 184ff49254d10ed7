"""The console's audit log page over a large log: keyset pages (`seq < before`, web/audit_page.py) beside
the OFFSET paging they replace, first page and deep, with and without filters.

    .venv/bin/python bench/audit_page.py [--lines 200000] [--pg-url postgresql+psycopg://postgres@127.0.0.1/test]

Lines are written straight with Core (the chain's hashes are not needed to read pages): 20 actors, the
kinds of action and 5,000 members spread over them, one line a minute back from now. Each query is run
five times and the median printed. The baseline is the same page by OFFSET, which reads and throws away
every line above it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).parent))
from jifen.db import make_engine, make_read_sessionmaker, make_sessionmaker, utcnow  # noqa: E402
from jifen.programs.models import Program  # noqa: E402
from jifen.security.audit import AuditEntry  # noqa: E402
from jifen.security.audit_keys import ACTIONS  # noqa: E402
from jifen.setup import init_database  # noqa: E402
from jifen.web.audit_page import PAGE_SIZE, Filters, lines  # noqa: E402
from ledger_ops import scratch_databases  # noqa: E402 - the scratch databases of the ledger bench


def fill(url: str, n: int) -> None:
    rng, now = random.Random(17), utcnow()
    factory = make_sessionmaker(make_engine(url))
    with factory() as s, s.begin():
        program_id = s.scalars(select(Program.id)).one()
        for start in range(0, n, 20_000):
            s.execute(insert(AuditEntry), [{
                "seq": i + 1, "program_id": program_id, "actor": f"user:{i % 20}:u{i % 20}", "role": "operator",
                "method": "POST", "path": "/console/x", "status": 303, "detail": {},
                "at": now - dt.timedelta(minutes=n - i), "prev_hash": "", "hash": "",
                "action": ACTIONS[rng.randrange(len(ACTIONS))], "member_id": f"M{rng.randrange(5000)}"}
                for i in range(start, min(n, start + 20_000))])


def median_ms(work) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(url: str, n: int, label: str) -> None:
    init_database(url)
    fill(url, n)
    if url.startswith("postgresql"):  # as autovacuum would after a day of writes: the planner's statistics
        with make_engine(url).connect() as conn:
            conn.exec_driver_sql("ANALYZE audit_log")
    read = make_read_sessionmaker(make_engine(url))
    with read() as s:
        program = s.scalars(select(Program)).one()
        deep = n // 2  # the page starting halfway down the log

        def offset(f: Filters, skip: int):
            return lambda: s.scalars(select(AuditEntry).where(AuditEntry.program_id == program.id, *(
                [AuditEntry.actor == f.actor] if f.actor else [])).order_by(AuditEntry.seq.desc())
                .offset(skip).limit(PAGE_SIZE + 1)).all()

        print(f"{label}: {n:,} audit lines, pages of {PAGE_SIZE}; median of 5, ms")
        print(f"  {'page':<38}{'keyset':>10}{'OFFSET (baseline)':>20}")
        for name, f, skip in (("first page, no filter", Filters(), 0),
                              ("halfway down, no filter", Filters(before=deep + 1), n - deep),
                              ("first page, one actor of 20", Filters(actor="user:3:u3"), 0),
                              ("halfway down, one actor of 20", Filters(actor="user:3:u3", before=deep + 1), None)):
            keyset = median_ms(lambda f=f: lines(s, program, f))
            base = median_ms(offset(f, skip)) if skip is not None else None
            print(f"  {name:<38}{keyset:>10.1f}{'—' if base is None else f'{base:.1f}':>20}")
        for name, f in (("one member of 5,000", Filters(member="M42")), ("one kind of action", Filters(action="points_moved")),
                        ("one day", Filters(start=utcnow().date() - dt.timedelta(days=3),
                                            end=utcnow().date() - dt.timedelta(days=3)))):
            print(f"  {name:<38}{median_ms(lambda f=f: lines(s, program, f)):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--pg-url")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/audit.db", args.lines, "SQLite")
    if args.pg_url:
        with scratch_databases(args.pg_url) as (url, _):
            run(url, args.lines, "PostgreSQL")


if __name__ == "__main__":
    main()
