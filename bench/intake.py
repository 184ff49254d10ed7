"""Bulk intake: a file of N purchase events through `jifen events import`, end to end, beside what the
database alone takes to store the same rows, measured in the same run on the same database.

    python bench/intake.py --db postgresql|sqlite --events N [--batch B] [--processes P] [--members M]
                           [--pg-url URL] [--no-docs]

The database is a scratch one (PostgreSQL: created on the server of --pg-url and dropped after; SQLite: a
temporary file) with seed 001's programme (rules, tier multipliers, 7-day pending purchase points) and M
members. The events are purchases spread over the last 30 days, in time order as an export would be,
each from its member's own phone (`attributes.device_id`), ¥1–20,000 with a median around ¥80. The
import is `flows.file_import.import_file`, the function behind the CLI: the file read and validated
whole, then read again and sent in batches.

Baselines: the same event rows (the events' own columns) copied into a bare table — PostgreSQL `COPY`
(psycopg `cursor.copy`), SQLite a raw `sqlite3` executemany in one transaction; and, as a second, what
intake stores per event — an event row, a journal entry, a lot, a lot move, two postings and an outbox
row, each a copy of a row the import wrote — into bare tables of the same columns (no keys, no indexes).
Neither baseline updates balances, locks members, prices rules or checks risk: they are the floor.

After the import the benchmark refuses to report a rate unless every event was stored and processed,
the members' balances add up to the points the import reported, and `ledger.verify` finds nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.events.models import Event
from jifen.events.schemas import MAX_BATCH
from jifen.flows.file_import import Outcome, import_file
from jifen.ledger.models import Account, JournalEntry, Lot, LotMove, Posting
from jifen.ledger.verify import verify
from jifen.members.service import NewMember, create_members
from jifen.outbox import OutboxMessage
from jifen.programs.config import load_example
from jifen.programs.service import apply_config, get_program
from jifen.setup import init_database

sys.path.insert(0, str(Path(__file__).parent))
from ledger_ops import scratch_databases  # noqa: E402 - the same scratch databases as the ledger bench
from report import replace_section  # noqa: E402

# What the section in docs/benchmarks.md says about the figures (the module's docstring, shorter).
ABOUT = ("A JSON Lines file of purchases (the last 30 days, in time order, each from its member's own phone, "
         "median ¥80) through `jifen events import`'s own function: the file validated whole, read again and "
         "sent through `ingest` in batches (seed 001's rules and tier multipliers, risk gate, ledger). "
         "Baselines, same run and database: the same event rows into a bare table, and intake's rows per event "
         "(copies of rows the import wrote) into bare tables of the same columns — no keys, indexes, locks, "
         "balances or rules: the floor of what storing them costs.")
CHANNELS = ["app", "app", "mini_program", "store", "web"]
# The events' own columns, as the bare table of the first baseline has them (types as in `events`).
EVENT_COLUMNS = ("event_id varchar(128), member_id varchar(64), type varchar(32), occurred_at timestamptz, "
                 "channel varchar(32), amount numeric(14, 2), order_id varchar(64), data json")
# What intake stores for one purchase: (table, rows per event).
SHAPE = [(Event.__tablename__, 1), (JournalEntry.__tablename__, 1), (Lot.__tablename__, 1),
         (LotMove.__tablename__, 1), (Posting.__tablename__, 2), (OutboxMessage.__tablename__, 1)]


def seed(url: str, members: int) -> float:
    """Seed 001's programme and the members, through the services in one transaction; seconds taken."""
    init_database(url)
    engine = make_engine(url)
    now = utcnow()

    def setup(s):
        apply_config(s, load_example("seed001"), now=now - dt.timedelta(days=1), actor="bench")
        program = get_program(s, "default")
        create_members(s, program, [NewMember(f"B{i}", attributes={"device_id": f"phone-{i}"},
                                              joined_at=now - dt.timedelta(days=400)) for i in range(members)])

    start = time.perf_counter()
    run_in_transaction(make_sessionmaker(engine), setup)
    engine.dispose()
    return time.perf_counter() - start


def generate(n: int, members: int) -> Iterator[dict]:
    rng, tag, now = random.Random(1), uuid.uuid4().hex[:8], utcnow()
    ages = sorted((rng.uniform(60, 30 * 86400) for _ in range(n)), reverse=True)  # oldest first
    for i, age in enumerate(ages):
        m = rng.randrange(members)
        amount = min(max(rng.lognormvariate(4.4, 0.9), 1.0), 20000.0)
        yield {"event_id": f"{tag}-{i}", "member_id": f"B{m}", "type": "purchase",
               "occurred_at": (now - dt.timedelta(seconds=age)).isoformat(), "channel": rng.choice(CHANNELS),
               "amount": f"{amount:.2f}", "order_id": f"SO-{tag}-{i}", "attributes": {"device_id": f"phone-{m}"}}


def write_files(folder: Path, n: int, members: int) -> tuple[Path, Path]:
    """The JSON Lines file to import, and the same rows as COPY text (tab-separated) for the baselines."""
    events, rows = folder / "events.jsonl", folder / "events.tsv"
    with events.open("w", encoding="utf-8") as out, rows.open("w", encoding="utf-8") as tsv:
        for e in generate(n, members):
            out.write(json.dumps(e, separators=(",", ":")) + "\n")
            values = [e["event_id"], e["member_id"], e["type"], e["occurred_at"], e["channel"], e["amount"],
                      e["order_id"], json.dumps(e["attributes"])]
            tsv.write("\t".join(values) + "\n")  # (no tab, newline or backslash in these values to escape)
    return events, rows


def check(url: str, n: int, outcome: Outcome) -> tuple[int, float]:
    """The import's result is a whole ledger, or no rate is reported. (journal entries, verify seconds)"""
    counts = outcome.tally.counts
    assert outcome.events == n and counts["processed"] == n, f"not all processed: {dict(counts)}"
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        stored = s.scalar(select(func.count()).select_from(Event))
        balances = s.scalar(select(func.coalesce(func.sum(Account.balance), 0)).where(Account.member_pk.isnot(None)))
        entries = s.scalar(select(func.count()).select_from(JournalEntry))
        assert stored == n, f"{stored} events stored of {n}"
        assert balances == outcome.tally.points, f"balances {balances} != points reported {outcome.tally.points}"
        start = time.perf_counter()
        problems = verify(s)
        took = time.perf_counter() - start
    engine.dispose()
    assert problems == [], [str(p) for p in problems[:3]]
    return entries, took


def _pg(url: str) -> psycopg.Connection:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


def _copy_in(conn: psycopg.Connection, table: str, blocks: Iterator[bytes]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
        for block in blocks:
            copy.write(block)


def _repeated(line: bytes, count: int, per_block: int = 1000) -> Iterator[bytes]:
    block = line * per_block
    for _ in range(count // per_block):
        yield block
    yield line * (count % per_block)


def pg_baselines(url: str, rows: Path, n: int) -> tuple[float, float]:
    """(event rows/s by COPY into a bare table, events/s for intake's rows per event by COPY into bare tables)."""
    with _pg(url) as conn:
        conn.execute(f"CREATE TABLE bench_event_rows ({EVENT_COLUMNS})")
        templates = {}
        for table, _ in SHAPE:
            conn.execute(f"CREATE TABLE bench_bare_{table} (LIKE {table})")
            with conn.cursor() as cur, cur.copy(f"COPY (SELECT * FROM {table} LIMIT 1) TO STDOUT") as copy:
                templates[table] = b"".join(bytes(b) for b in copy)
        conn.commit()

        start = time.perf_counter()
        with rows.open("rb") as f:
            _copy_in(conn, "bench_event_rows", iter(lambda: f.read(1 << 20), b""))
        conn.commit()
        events = n / (time.perf_counter() - start)

        start = time.perf_counter()
        for table, per_event in SHAPE:
            _copy_in(conn, f"bench_bare_{table}", _repeated(templates[table], n * per_event))
        conn.commit()
        shaped = n / (time.perf_counter() - start)
    return events, shaped


def sqlite_baselines(db: Path, folder: Path, rows: Path, n: int) -> tuple[float, float]:
    """The same two baselines with raw sqlite3 (executemany, one transaction each), on a file with
    Jifen's settings (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"CREATE TABLE event_rows ({EVENT_COLUMNS.replace('timestamptz', 'timestamp')})")
    conn.execute("ATTACH DATABASE ? AS src", (str(db),))
    templates = {}
    for table, _ in SHAPE:
        conn.execute(f"CREATE TABLE main.bare_{table} AS SELECT * FROM src.{table} WHERE 0")
        templates[table] = conn.execute(f"SELECT * FROM src.{table} LIMIT 1").fetchone()
    conn.execute("DETACH DATABASE src")

    start = time.perf_counter()
    conn.execute("BEGIN")
    with rows.open(encoding="utf-8") as f:
        conn.executemany("INSERT INTO event_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (line.rstrip("\n").split("\t") for line in f))
    conn.execute("COMMIT")
    events = n / (time.perf_counter() - start)

    start = time.perf_counter()
    conn.execute("BEGIN")
    for table, per_event in SHAPE:
        marks = ", ".join("?" * len(templates[table]))
        conn.executemany(f"INSERT INTO bare_{table} VALUES ({marks})", itertools.repeat(templates[table], n * per_event))
    conn.execute("COMMIT")
    shaped = n / (time.perf_counter() - start)
    conn.close()
    return events, shaped


def ratio(figure: float, baseline: float) -> str:
    return f"{figure / baseline:.1f}×" if figure >= baseline else f"1/{baseline / figure:,.0f}"


def progress_printer(n: int):
    """A line on stderr at about every 10 % of the sending (a long run says where it is)."""
    state = {"next": 10}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "sending" and total and done * 100 >= state["next"] * total:
            state["next"] = done * 100 // total // 10 * 10 + 10
            print(f"  {done:,}/{total:,} events sent", file=sys.stderr, flush=True)

    return progress


@contextlib.contextmanager
def database(kind: str, pg_url: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'jifen.db'}"
    else:
        with scratch_databases(pg_url) as (url, _pgbench_db):
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["postgresql", "sqlite"], required=True)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=MAX_BATCH)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    n, label = args.events, {"postgresql": "PostgreSQL", "sqlite": "SQLite"}[args.db]

    with tempfile.TemporaryDirectory(prefix="jifen-bench-") as tmp, database(args.db, args.pg_url, Path(tmp)) as url:
        folder = Path(tmp)
        print(f"{label}: seeding seed 001 and {args.members:,} members …", file=sys.stderr, flush=True)
        seeding = seed(url, args.members)
        events_file, rows = write_files(folder, n, args.members)
        print(f"importing {n:,} events ({events_file.stat().st_size / 2**20:.1f} MiB), batch {args.batch}, "
              f"{args.processes} process(es) …", file=sys.stderr, flush=True)
        outcome = import_file(url, events_file, batch=args.batch, processes=args.processes, actor="bench",
                              progress=progress_printer(n))
        entries, verifying = check(url, n, outcome)
        print("checked: all events stored, balances = points reported, ledger verified; baselines …",
              file=sys.stderr, flush=True)
        if args.db == "postgresql":
            base, shaped = pg_baselines(url, rows, n)
            how = "COPY (psycopg `cursor.copy`)"
        else:
            base, shaped = sqlite_baselines(folder / "jifen.db", folder, rows, n)
            how = "raw sqlite3 executemany (one transaction)"

    total = outcome.validating + outcome.sending
    whole, sending = n / total, n / outcome.sending
    per_event = " + ".join(f"{k}×{t}" if k > 1 else t for t, k in SHAPE)
    table = "\n".join([
        "| what | figure | baseline | ratio |",
        "|---|---|---|---|",
        f"| `events import`, end to end ({n:,} events, batch {args.batch}, {args.processes} process"
        f"{'es' if args.processes > 1 else ''}) | {whole:,.0f} events/s ({total:.1f} s) | "
        f"{how} of the same rows into a bare table: {base:,.0f} rows/s | {ratio(whole, base)} |",
        f"| the same, without the validation pass (reading the file again, intake) | {sending:,.0f} events/s "
        f"({outcome.sending:.1f} s) | same: {base:,.0f} rows/s | {ratio(sending, base)} |",
        f"| `events import`, end to end | {whole:,.0f} events/s | {how} of intake's rows per event ({per_event}) "
        f"into bare tables: {shaped:,.0f} events/s | {ratio(whole, shaped)} |",
        f"| validation pass alone (read, parse, validate) | {n / outcome.validating:,.0f} events/s "
        f"({outcome.validating:.1f} s) | | |",
        f"| seeding {args.members:,} members (`create_members`, one transaction) | "
        f"{args.members / seeding:,.0f} members/s ({seeding:.1f} s) | | |",
        f"| `ledger.verify` after the import ({entries:,} journal entries) | {entries / verifying:,.0f} entries/s "
        f"({verifying:.1f} s) | | |",
    ])
    command = (f"python bench/intake.py --db {args.db} --events {n} --batch {args.batch} "
               f"--processes {args.processes} --members {args.members}")
    print(table)
    if not args.no_docs:
        replace_section(f"Bulk intake, {label}", f"`{command}`. {ABOUT}\n\nThis run: {outcome.tally.points:,} "
                        f"points awarded; checked after the import: {n:,} events stored, the members' balances "
                        f"equal the points reported, `ledger.verify` clean.\n\n{table}\n",
                        pg_url=args.pg_url if args.db == "postgresql" else None)


if __name__ == "__main__":
    main()
