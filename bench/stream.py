"""Stream intake: N purchase events published to NATS JetStream and taken by C `jifen events consume`
processes, beside `jifen events import` of N events of the same shape into the same database, in the same run.

    python bench/stream.py [--events N] [--members M] [--consumers C] [--partitions P] [--batch B]
                           [--pg-url URL] [--nats URL] [--no-docs]

A scratch PostgreSQL database with seed 001's programme and M members (bench/intake.py's), two event files
of the same shape (bench/intake.py's generator, each with its own event ids): the first imported from the file
(the baseline), the second published to a scratch stream and consumed. The consumers are separate processes,
each taking P / C partitions; the clock runs from their start until every message is acknowledged. No rate is
reported unless every event of both files is stored with exactly one journal entry.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
from sqlalchemy import func, select

from intake import database, progress_printer, seed, write_files
from jifen.db import make_engine, make_sessionmaker
from jifen.events import jsonl
from jifen.events.models import Event
from jifen.flows.file_import import import_file
from jifen.flows.stream import Stream, publish
from jifen.ledger.models import JournalEntry
from report import replace_section

JIFEN = str(Path(sys.executable).parent / "jifen")


async def _unsettled(nats_url: str, stream: Stream) -> int:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        total = 0
        for k in range(stream.partitions):
            try:
                info = await js.consumer_info(stream.name, stream.durable(k))
                total += info.num_pending + info.num_ack_pending
            except nats.js.errors.NotFoundError:  # (not created yet by its consumer)
                total += (await js.stream_info(stream.name, subjects_filter=stream.subject(k))).state.messages
        return total
    finally:
        await nc.close()


async def _drop(nats_url: str, stream: Stream) -> None:
    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_stream(stream.name)
    await nc.close()


def _entries_per_event(url: str) -> tuple[int, int, int]:
    """(events stored, events with exactly one journal entry, journal entries of events)."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        events = s.scalar(select(func.count()).select_from(Event))
        per = select(JournalEntry.reference, func.count().label("n")).where(
            JournalEntry.reference.startswith("event:")).group_by(JournalEntry.reference).subquery()
        once = s.scalar(select(func.count()).select_from(per).where(per.c.n == 1))
        entries = s.scalar(select(func.coalesce(func.sum(per.c.n), 0)))
    engine.dispose()
    return events, once, entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    n, c, p = args.events, args.consumers, args.partitions
    stream = Stream(f"BENCH{uuid.uuid4().hex[:8]}", "default", p)
    with tempfile.TemporaryDirectory(prefix="jifen-bench-") as tmp, \
            database("postgresql", args.pg_url, Path(tmp)) as url:
        print(f"PostgreSQL: seeding seed 001 and {args.members:,} members …", file=sys.stderr, flush=True)
        seed(url, args.members)
        (Path(tmp) / "a").mkdir()
        (Path(tmp) / "b").mkdir()
        by_file, _ = write_files(Path(tmp) / "a", n, args.members)
        by_stream, _ = write_files(Path(tmp) / "b", n, args.members)
        print(f"baseline: importing {n:,} events from a file, batch {args.batch} …", file=sys.stderr, flush=True)
        imported = import_file(url, by_file, batch=args.batch, actor="bench", progress=progress_printer(n))
        importing = imported.validating + imported.sending
        print(f"publishing {n:,} events to {stream.name} ({p} partitions) …", file=sys.stderr, flush=True)
        began = time.perf_counter()
        published = asyncio.run(publish(args.nats, stream, (ev for _, ev in jsonl.read(by_stream))))
        publishing = time.perf_counter() - began
        try:
            print(f"consuming with {c} process(es) …", file=sys.stderr, flush=True)
            shares = [list(range(p))[k::c] for k in range(c)]
            began = time.perf_counter()
            consumers = [subprocess.Popen(
                [JIFEN, "events", "consume", "--stream", stream.name, "--partitions", str(p), "--batch",
                 str(args.batch), "--take", ",".join(map(str, share))],
                env={**os.environ, "JIFEN_DATABASE_URL": url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for share in shares]
            while (left := asyncio.run(_unsettled(args.nats, stream))) > 0:
                print(f"  {n - left:,}/{n:,} taken", file=sys.stderr, flush=True)
                time.sleep(1)
            consuming = time.perf_counter() - began
            for proc in consumers:
                proc.terminate()
                proc.wait(60)
        finally:
            asyncio.run(_drop(args.nats, stream))
        events, once, entries = _entries_per_event(url)
        if not (published == n and events == 2 * n and once == 2 * n and entries == 2 * n):
            sys.exit(f"refusing to report: published {published}, stored {events}, with one entry {once}, "
                     f"entries {entries} (expected {n}, {2 * n}, {2 * n}, {2 * n})")
    file_rate, stream_rate = n / importing, n / consuming
    table = "\n".join([
        "| what | figure | baseline | ratio |",
        "|---|---|---|---|",
        f"| `events consume`, {c} process{'es' if c > 1 else ''} over {p} partitions, batch {args.batch}: "
        f"{n:,} events from JetStream to committed and acknowledged | {stream_rate:,.0f} events/s "
        f"({consuming:.1f} s, processes' start included) | `events import` of {n:,} events of the same shape, "
        f"1 process: {file_rate:,.0f} events/s | {stream_rate / file_rate:.2f} |",
        f"| `events publish` ({n:,} events, acknowledged by JetStream) | {n / publishing:,.0f} events/s | | |",
    ])
    print(table)
    if not args.no_docs:
        command = (f"python bench/stream.py --events {n} --members {args.members} --consumers {c} "
                   f"--partitions {p} --batch {args.batch}")
        replace_section("Stream intake (NATS JetStream), PostgreSQL", f"`{command}`. Checked after the run: every "
                        f"event of both files stored, each with exactly one journal entry.\n\n{table}\n",
                        pg_url=args.pg_url)


if __name__ == "__main__":
    main()
