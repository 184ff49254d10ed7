"""A file of events through the intake (`jifen events import`): every line validated before anything is
sent, then the events sent through `ingest` in batches, one transaction each, by one process or several.

Several processes: the file's lines are split by member (`events.jsonl.part_of`), so each member's events
are sent by one process, in the file's order, and are priced exactly as one process would price them. Each
process opens its own engine (connections do not survive a fork, and spawned processes share nothing).
Members of different parts meet only in what the programme shares (the hash chain's head, a referrer
rewarded for a friend's purchase): the database locks those, and `run_in_transaction` retries a deadlock.
Each process pays Python's start and Jifen's imports (about 2 s on a small machine): for a file of a few
thousand events one process is quicker. On SQLite the processes take turns at the one writer lock.

Re-running a file resumes: events already taken are answered as replays. If a process fails, the others
stop after their current batch and the error is raised; what was committed stays, and a re-run resumes."""

from __future__ import annotations

import multiprocessing
import queue as queues
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from jifen.db import make_engine, make_sessionmaker, refresh_statistics, run_in_transaction, utcnow
from jifen.events import jsonl
from jifen.events.models import Event
from jifen.events.schemas import MAX_BATCH, EventIn
from jifen.flows.intake import ingest
from jifen.ledger.models import JournalEntry, Lot, LotMove, Posting
from jifen.outbox import OutboxMessage
from jifen.programs.service import get_program
from jifen.risk.models import MemberDevice

T = TypeVar("T")
# (stage, done, total): "validating" counts bytes of the file, "sending" counts events.
Progress = Callable[[str, int, int], None]


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)  # processed / replayed / rejected
    points: int = 0  # awarded to the processed events
    refused: list[dict[str, Any]] = field(default_factory=list)  # {"line", "event", "error"}

    def count(self, sent: list[tuple[int, EventIn]], results: list[dict[str, Any]]) -> None:
        for (n, ev), r in zip(sent, results, strict=True):
            self.counts[r["status"]] += 1
            if r["status"] == "processed":
                self.points += int(r.get("points", 0))
            elif r["status"] == "rejected":
                self.refused.append({"line": n, "event": ev.model_dump(mode="json"), "error": r["error"]})

    def add(self, other: Tally) -> None:
        self.counts += other.counts
        self.points += other.points
        self.refused += other.refused


@dataclass
class Outcome:
    events: int
    tally: Tally
    validating: float  # seconds: the first pass over the file
    sending: float  # seconds: reading the events again and sending them (processes started included)


def import_file(url: str, path: Path, *, program: str = "default", batch: int = MAX_BATCH, processes: int = 1,
                actor: str | None = None, progress: Progress | None = None) -> Outcome:
    """Validate the whole file (jsonl.BadLine names the first bad line; nothing is sent), then send it.
    The refused events come back in the file's order."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jifen-import-") as tmp:
        def reading(done: int, size: int) -> None:
            if progress:
                progress("validating", done, size)

        scan = jsonl.scan(path, processes, Path(tmp), reading)
        _check_program(url, program)
        validated = time.perf_counter()
        sent = 0

        def report(n: int) -> None:
            nonlocal sent
            sent += n
            if progress:
                progress("sending", sent, scan.events)

        if not scan.parts:
            tally = send_part(url, path, False, program, batch, actor, report)
        else:
            busy = [p for p, size in zip(scan.parts, scan.sizes, strict=True) if size]  # (parts with events)
            tally = _in_processes(url, busy, program, batch, actor, report) if busy else Tally()
    tally.refused.sort(key=lambda x: int(x["line"]))
    return Outcome(scan.events, tally, validated - began, time.perf_counter() - validated)


def _check_program(url: str, program: str) -> None:
    """An unknown programme is refused once, here, rather than by every batch of every process."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            get_program(s, program)
    finally:
        engine.dispose()


def send_part(url: str, path: Path, numbered: bool, program: str, batch: int, actor: str | None,
              report: Callable[[int], None], stop: Callable[[], bool] = lambda: False) -> Tally:
    """Send the events of a file (or of a part file: numbered) in batches, with an engine of its own."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    tally = Tally()
    sent = 0
    try:
        for chunk in _batches(jsonl.read(path, numbered), batch):
            if stop():
                break
            events = [ev for _, ev in chunk]

            def work(s: Session) -> list[dict[str, Any]]:
                return ingest(s, get_program(s, program), events, now=utcnow(), actor=actor, strict=False)

            tally.count(chunk, run_in_transaction(factory, work))
            report(len(chunk))
            sent += 1
            if sent in _ANALYZE_AFTER:
                refresh_statistics(engine, () if sent == 1 else GROWN)
    finally:
        engine.dispose()
    return tally


# Batches after which the tables are analysed: an import into a young database outgrows the planner's
# statistics long before autovacuum's next look (a minute, and 10 % growth), and with a table believed
# empty the planner reads events by programme instead of by their unique key (10× slower per lookup).
_ANALYZE_AFTER = (1, 4, 16, 64, 256)
# After the first batch the whole database (members seeded just before an import must be analysed too: left
# out, the batch's member lookup became a sequential scan, 0.3 s a batch); after the later ones only the tables
# an import grows (the whole database, 100-odd tables, took 0.2 s a time: 4-5 % of a 20,000-event import).
GROWN = tuple(m.__tablename__ for m in (Event, JournalEntry, Lot, LotMove, Posting, OutboxMessage, MemberDevice))


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _in_processes(url: str, parts: list[Path], program: str, batch: int, actor: str | None,
                  report: Callable[[int], None]) -> Tally:
    """One process per part. Spawned, not forked: a fork would copy this process's threads (the progress
    bar's) and any open connection into the child."""
    ctx = multiprocessing.get_context("spawn")
    sent: Any = ctx.Queue()  # each process's batches sent, for the progress bar
    stop: Any = ctx.Event()  # set when one process failed: the others end after their current batch
    tally = Tally()
    with ProcessPoolExecutor(len(parts), mp_context=ctx, initializer=_start_worker, initargs=(sent, stop)) as pool:
        pending = {pool.submit(_worker, url, part, program, batch, actor) for part in parts}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(sent, report)
                for f in finished:
                    tally.add(f.result())
        except BaseException:
            stop.set()
            raise
    _drain(sent, report)  # (the workers have exited: what they put is all in the queue now)
    return tally


def _drain(sent: Any, report: Callable[[int], None]) -> None:
    while True:
        try:
            report(sent.get_nowait())
        except queues.Empty:
            return


_channel: tuple[Any, Any] | None = None  # (sent queue, stop event) in a worker process


def _start_worker(sent: Any, stop: Any) -> None:
    global _channel
    _channel = (sent, stop)


def _worker(url: str, part: Path, program: str, batch: int, actor: str | None) -> Tally:
    assert _channel is not None  # (set by the pool's initializer)
    sent, stop = _channel
    return send_part(url, part, True, program, batch, actor, sent.put, stop.is_set)
