"""Ledger operation throughput and latency, each figure printed beside a baseline from the same run.

Baselines: on PostgreSQL, `pgbench -N` (the TPC-B-like "simple update" transaction: 3 updates/inserts
and a commit) on the same server, same client count; on SQLite, the same shape of transaction done
with the raw sqlite3 module on a file with the same settings. Both show what the database alone can
do, so the gap is what Jifen's bookkeeping (locks, lots, postings, hash chain, idempotency) costs.

    .venv/bin/python bench/ledger_ops.py [--ops 1000] [--clients 8] [--pg-url URL]

Each operation is what the API does for one request, minus HTTP: its own transaction with an
idempotency key, the programme/wallet/member look-ups, the ledger write. Clients are processes.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.idempotency import idempotent
from jifen.ledger import operations as ops
from jifen.ledger.verify import verify
from jifen.members.service import create_member, get_member
from jifen.programs.service import get_program, get_wallet
from jifen.setup import init_database

MEMBERS = 200


def _scope(s):
    program = get_program(s, "default")
    return ops.Scope(s, program, get_wallet(s, program, None), utcnow(), "bench")


def _op(factory, kind: str, rng: random.Random, key: str) -> None:
    a, b = rng.sample(range(MEMBERS), 2)

    def work(s):
        sc = _scope(s)
        ma = get_member(s, sc.program, f"B{a}")
        if kind == "award":
            ops.award(sc, ma, rng.randint(1, 500))
        elif kind == "spend":
            ops.spend(sc, ma, rng.randint(1, 50))
        elif kind == "transfer":
            ops.transfer(sc, ma, get_member(s, sc.program, f"B{b}"), rng.randint(1, 20))
        return {}

    run_in_transaction(factory, lambda s: idempotent(s, 1, key, kind, [a, b], lambda: work(s)))


def _client(url: str, kind: str, n: int, seed_: int) -> list[float]:
    """One client process: its own engine and connection, n operations one after another."""
    engine = make_engine(url) if url.startswith("sqlite") else make_engine(url, pool_size=2)
    factory = make_sessionmaker(engine)
    rng, latencies = random.Random(seed_), []
    for _ in range(n):
        t0 = time.perf_counter()
        _op(factory, kind, rng, f"{kind}-{uuid.uuid4().hex}")
        latencies.append(time.perf_counter() - t0)
    engine.dispose()
    return latencies


def run_jifen(url: str, kind: str, n: int, clients: int) -> dict:
    """`clients` processes (like API worker processes; threads would share one GIL) splitting n ops."""
    start = time.perf_counter()
    if clients == 1:
        latencies = _client(url, kind, n, 0)
    else:
        with ProcessPoolExecutor(clients) as pool:
            parts = pool.map(_client, [url] * clients, [kind] * clients, [n // clients] * clients, range(clients))
            latencies = [x for part in parts for x in part]
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"ops_s": len(latencies) / elapsed, "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def seed(url: str) -> None:
    init_database(url)
    engine = make_engine(url)

    def members(s):
        sc = _scope(s)
        for i in range(MEMBERS):
            ops.award(sc, create_member(s, sc.program, f"B{i}"), 1_000_000)

    run_in_transaction(make_sessionmaker(engine), members)
    engine.dispose()


def sqlite_baseline(path: Path, n: int) -> float:
    """Raw sqlite3: BEGIN IMMEDIATE; UPDATE two balances; INSERT a history row; COMMIT."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE acc(id INTEGER PRIMARY KEY, bal INTEGER)")
    conn.execute("CREATE TABLE hist(id INTEGER PRIMARY KEY, acc INTEGER, delta INTEGER)")
    conn.executemany("INSERT INTO acc VALUES (?, 0)", [(i,) for i in range(MEMBERS)])
    rng = random.Random(1)
    start = time.perf_counter()
    for _ in range(n):
        a, d = rng.randrange(MEMBERS), rng.randint(1, 500)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE acc SET bal = bal + ? WHERE id = ?", (d, a))
        conn.execute("UPDATE acc SET bal = bal - ? WHERE id = ?", (d, (a + 1) % MEMBERS))
        conn.execute("INSERT INTO hist(acc, delta) VALUES (?, ?)", (a, d))
        conn.execute("COMMIT")
    return n / (time.perf_counter() - start)


def pgbench(dsn_url: str, clients: int, seconds: int, builtin: str = "simple-update") -> float:
    """tps of one of pgbench's built-in scripts (simple-update is `-N`; tpcb-like its default)."""
    url = make_url(dsn_url)
    base = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    subprocess.run(["pgbench", *base, "-i", "-q", "-s", "1", url.database], check=True, capture_output=True)
    out = subprocess.run(["pgbench", *base, "-b", builtin, "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
                          url.database], check=True, capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("tps"))
    return float(line.split("=")[1].split()[0])


@contextlib.contextmanager
def scratch_databases(admin_url: str):
    """Two scratch PostgreSQL databases on the server of admin_url (Jifen's, pgbench's), dropped after."""
    admin = make_url(admin_url)
    name = f"jifen_bench_{uuid.uuid4().hex[:8]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'CREATE DATABASE "{name}_pgbench"')
    try:
        yield (admin.set(database=name).render_as_string(hide_password=False),
               admin.set(database=f"{name}_pgbench").render_as_string(hide_password=False))
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_pgbench" WITH (FORCE)')


def time_verify(url: str) -> tuple[int, float]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        start = time.perf_counter()
        problems = verify(s)
        elapsed = time.perf_counter() - start
        entries = s.execute(text("SELECT count(*) FROM journal_entries")).scalar()
    engine.dispose()
    assert problems == [], problems[:3]
    return entries, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8, help="client processes in the concurrent runs")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    rows = []

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seed(url)
        base = sqlite_baseline(Path(tmp) / "baseline.db", args.ops)
        for kind in ("award", "spend", "transfer"):
            r = run_jifen(url, kind, args.ops, 1)
            rows.append(("SQLite", kind, 1, r, f"raw sqlite3 tx: {base:,.0f} tx/s"))
        entries, secs = time_verify(url)
        rows.append(("SQLite", "verify", 1, {"ops_s": entries / secs, "p50_ms": 0, "p99_ms": secs * 1000},
                     f"{entries} entries in {secs:.2f}s"))

    with scratch_databases(args.pg_url) as (url, bench_db):
        seed(url)
        for clients in (1, args.clients):
            tps = pgbench(bench_db, clients, 10)
            for kind in ("award", "spend", "transfer"):
                r = run_jifen(url, kind, args.ops, clients)
                rows.append(("PostgreSQL", kind, clients, r, f"pgbench -N -c {clients}: {tps:,.0f} tps"))
        entries, secs = time_verify(url)
        rows.append(("PostgreSQL", "verify", 1, {"ops_s": entries / secs, "p50_ms": 0, "p99_ms": secs * 1000},
                     f"{entries} entries in {secs:.2f}s"))

    print("| database | operation | clients | ops/s | p50 ms | p99 ms | baseline (same run) |")
    print("|---|---|---|---|---|---|---|")
    for db, kind, clients, r, baseline in rows:
        if kind == "verify":
            print(f"| {db} | verify (all checks) | 1 | {r['ops_s']:,.0f} entries/s | | | {baseline} |")
        else:
            print(f"| {db} | {kind} | {clients} | {r['ops_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {baseline} |")


if __name__ == "__main__":
    main()
