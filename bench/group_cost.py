"""What one group commit of N single events costs, in-process: statements sent, Python calls, CPU and wall time
per group, beside a pgbench tpcb-like transaction (five statements) from one client in the same run.

    python bench/group_cost.py [--sizes 1,8,50] [--groups 200] [--members 2000] [--history 10000]
                               [--pg-url URL] [--no-docs]

At few clients a group is small, and what it costs whatever its size decides the throughput (docs/benchmarks.md,
"where a small group's time goes"). Statements and Python calls do not move with the machine's load, so they
show a change that wall and CPU times, which swing by a fifth between runs on a shared VM, cannot.

The database is a scratch one with seed 001's programme, M members and a history of past purchases imported
through `jifen events import` (then VACUUM ANALYZE, as `pgbench -i` leaves its tables): on a database seeded a
moment before, each connection plans its foreign-key checks on empty tables and keeps scanning them as they
grow, which measures a database no programme runs on for more than its first minutes. Each group is
`flows.group_commit.commit_events`, the function a server's group-commit thread calls, with N purchases of
distinct members. Statements are counted at the driver (psycopg's execute, executemany and copy), Python calls
with cProfile in a separate pass (it slows the code it counts).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from jifen.db import make_engine, make_sessionmaker, utcnow
from jifen.events.schemas import EventIn
from jifen.flows.file_import import import_file
from jifen.flows.group_commit import commit_events
from jifen.programs.service import get_program

sys.path.insert(0, str(Path(__file__).parent))
from intake import seed, write_files  # noqa: E402 - the bulk bench's programme, members and purchases
from ledger_ops import pgbench, scratch_databases  # noqa: E402
from report import replace_section  # noqa: E402


@contextlib.contextmanager
def counted() -> Iterator[list[int]]:
    """[statements sent through psycopg] while the block runs."""
    count, originals = [0], {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany", "copy")}

    def counting(original):
        def send(self, *args, **kwargs):
            count[0] += 1
            return original(self, *args, **kwargs)
        return send

    for name, original in originals.items():
        setattr(psycopg.Cursor, name, counting(original))
    try:
        yield count
    finally:
        for name, original in originals.items():
            setattr(psycopg.Cursor, name, original)


def purchases(n: int, members: int, start: int) -> list[EventIn]:
    """n purchases now, of n distinct members (a stride through them from `start`)."""
    now = utcnow().isoformat()
    picked = [(start + i * 37) % members for i in range(n)]
    return [EventIn.model_validate({
        "event_id": uuid.uuid4().hex, "member_id": f"B{m}", "type": "purchase", "occurred_at": now, "amount": "88.00",
        "order_id": uuid.uuid4().hex, "attributes": {"device_id": f"phone-{m}"}}) for m in picked]


def measure(url: str, size: int, groups: int, members: int) -> dict[str, float]:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        key = (get_program(s, "default").id, None)
    sent = [0]

    def batches(count: int) -> list[list[EventIn]]:
        out = [purchases(size, members, sent[0] + k * size) for k in range(count)]
        sent[0] += count * size
        return out

    for group in batches(20):  # connections opened, statements prepared
        commit_events(factory, key, group)
    cpu, start = [], time.perf_counter()
    with counted() as statements:
        for group in batches(groups):
            began = time.thread_time()
            commit_events(factory, key, group)
            cpu.append(time.thread_time() - began)
    wall = time.perf_counter() - start
    profiled, profile = batches(max(20, groups // 4)), cProfile.Profile()
    profile.enable()
    for group in profiled:
        commit_events(factory, key, group)
    profile.disable()
    engine.dispose()
    return {"statements": statements[0] / groups, "calls": pstats.Stats(profile).total_calls / len(profiled),
            "cpu": statistics.median(cpu) * 1000, "wall": wall / groups * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,50", help="events per group")
    parser.add_argument("--groups", type=int, default=200, help="groups measured per size")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--history", type=int, default=10_000, help="past purchases imported before measuring")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    if max(sizes) > args.members:
        sys.exit("--members must be at least the largest group: a group's purchases are of distinct members")

    with tempfile.TemporaryDirectory(prefix="jifen-bench-") as tmp, \
            scratch_databases(args.pg_url) as (url, pgbench_db):
        print(f"seeding {args.members:,} members and importing {args.history:,} past purchases …",
              file=sys.stderr, flush=True)
        seed(url, args.members)
        history, _ = write_files(Path(tmp), args.history, args.members)
        import_file(url, history, batch=1000, processes=1, actor="bench")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        rows = []
        for size in sizes:
            print(f"groups of {size} …", file=sys.stderr, flush=True)
            rows.append((size, measure(url, size, args.groups, args.members)))
        tpcb_ms = 1000 / pgbench(pgbench_db, 1, 10, "tpcb-like")

    lines = ["| events per group | statements per group | Python calls per group | CPU per group (median) | "
             "wall per group | wall per event | pgbench tpcb-like, 1 client, same run |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {size} | {r['statements']:.1f} | {r['calls']:,.0f} | {r['cpu']:.1f} ms | {r['wall']:.1f} ms | "
              f"{r['wall'] / size:.2f} ms | {tpcb_ms:.2f} ms a transaction (5 statements) |" for size, r in rows]
    table = "\n".join(lines)
    print(table)
    if not args.no_docs:
        command = (f"python bench/group_cost.py --sizes {args.sizes} --groups {args.groups} --members {args.members} "
                   f"--history {args.history}")
        replace_section("Group commit, cost per group, PostgreSQL", f"`{command}`. `commit_events` (what a server's "
                        "group-commit thread runs) with N purchases of distinct members, in-process, on a database "
                        "with a history of past purchases, analysed. Statements counted at the driver, Python calls "
                        "by cProfile in a separate pass; CPU is the thread's.\n\n" + table + "\n", pg_url=args.pg_url)


if __name__ == "__main__":
    main()
