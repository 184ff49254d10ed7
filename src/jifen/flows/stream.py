"""Member events from a NATS JetStream stream (`jifen events publish` / `jifen events consume`), through the
same set-oriented intake as a file or the batch endpoint.

Subjects, for a stream NAME (lower-cased as the prefix):
- `name.events.<programme>.<k>`: the events, partitioned by member (`jsonl.part_of`, the hash `events import
  --processes` splits a file by), so each member's events stay in one partition, in the order published;
- `name.dead.<programme>`: the dead letters: an event refused by the intake, or a message that is not an
  event, with its error.

A consumer takes a set of partitions, one durable pull consumer on JetStream per partition (`NAME-<prog>-p<k>`),
fetches up to a batch across them, and sends the batch through `ingest` in one transaction. The messages are
acknowledged only after that transaction has committed: a consumer killed before it redelivers them to the
next one (after the ack wait), and the intake, keyed by event_id, answers those already committed as replays.
So every event is taken exactly once, and none is lost. A partition must be taken by one consumer at a
time: two fetching from it would interleave a member's events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.events.jsonl import part_of
from jifen.events.schemas import EventIn
from jifen.flows.intake import ingest
from jifen.metrics import STREAM_MESSAGES, STREAM_PENDING, count_events
from jifen.programs.service import get_program

log = logging.getLogger("jifen.stream")
# An unreachable server is an error at once, not a minute of silent retries; a running consumer reconnects.
CONNECT: dict[str, Any] = {"connect_timeout": 5, "allow_reconnect": True, "max_reconnect_attempts": -1}
MAX_DELIVERIES = 5  # a message whose batch failed this many times goes to the dead letters


@dataclass(frozen=True)
class Stream:
    name: str
    program: str
    partitions: int = 8

    @property
    def prefix(self) -> str:
        return self.name.lower()

    def subject(self, k: int) -> str:
        return f"{self.prefix}.events.{self.program}.{k}"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.dead.{self.program}"

    def durable(self, k: int) -> str:
        return f"{self.name}-{self.program}-p{k}"


async def ensure_stream(js: Any, stream: Stream) -> None:
    """Create the stream when it does not exist (file storage: it outlives a restart of the server)."""
    try:
        await js.stream_info(stream.name)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream.name, subjects=[f"{stream.prefix}.events.>",
                                                                     f"{stream.prefix}.dead.>"]))


async def publish(nats_url: str, stream: Stream, events: Iterable[EventIn],
                  progress: Callable[[int], None] | None = None, window: int = 2000) -> int:
    """Publish events to their members' partitions; returns how many the stream acknowledged. Each message
    carries its event_id as `Nats-Msg-Id`, so JetStream drops a re-publish within its duplicate window."""
    nc = await nats.connect(nats_url, **CONNECT)
    try:
        js = nc.jetstream(publish_async_max_pending=window)
        await ensure_stream(js, stream)
        sent = 0
        for ev in events:
            await js.publish_async(stream.subject(part_of(ev.member_id, stream.partitions)),
                                   ev.model_dump_json().encode(), headers={"Nats-Msg-Id": ev.event_id})
            sent += 1
            if sent % window == 0:
                await js.publish_async_completed()
                if progress:
                    progress(sent)
        await js.publish_async_completed()
        if progress:
            progress(sent)
        return sent
    finally:
        await nc.close()


@dataclass
class Stats:
    counts: Counter[str] = field(default_factory=Counter)  # processed / replayed / rejected / dead (not events)
    batches: int = 0
    pending: int = 0  # messages in the consumers' partitions not yet delivered (the lag), at the last look
    started: float = field(default_factory=time.monotonic)

    @property
    def taken(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        rate = self.taken / max(time.monotonic() - self.started, 1e-9)
        return (f"{self.taken:,} messages in {self.batches:,} batches ({rate:,.0f}/s): "
                + ", ".join(f"{v:,} {k}" for k, v in sorted(self.counts.items())) + f"; {self.pending:,} waiting")


async def consume(db_url: str, nats_url: str, stream: Stream, take: list[int], *, batch: int = 500,
                  ack_wait: float = 30.0, until_idle: float | None = None, stop: asyncio.Event | None = None,
                  report: Callable[[Stats], None] | None = None) -> Stats:
    """Take the partitions `take` until `stop` is set (or, with until_idle, until nothing has come for that
    many seconds). Each batch: one intake transaction, then the dead letters published, then the acks."""
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    with factory() as s:  # an unknown programme is refused here, not by every batch
        get_program(s, stream.program)
    nc = await nats.connect(nats_url, **CONNECT)
    stats = Stats()
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream)
        # At most a batch unacknowledged per partition: a consumer that dies holding a full batch leaves the
        # partition stopped until that batch is redelivered, rather than its successor taking later events first.
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait, max_ack_pending=batch)
        subs = [await js.pull_subscribe(stream.subject(k), durable=stream.durable(k), stream=stream.name,
                                        config=config) for k in take]
        idle_since = time.monotonic()
        while not (stop and stop.is_set()):
            msgs = await _fetch(subs, batch)
            if not msgs:
                stats.pending = await _lag(js, stream, take)
                if report:
                    report(stats)
                if until_idle is not None and time.monotonic() - idle_since >= until_idle:
                    break
                continue
            await _take(nc, js, factory, stream, msgs, stats)
            idle_since = time.monotonic()
            if report and stats.batches % 10 == 1:
                stats.pending = await _lag(js, stream, take)
                report(stats)
        return stats
    finally:
        await nc.close()
        engine.dispose()


async def _fetch(subs: list[Any], batch: int) -> list[Any]:
    """Up to `batch` messages across the partitions, waiting briefly on each when they are empty."""
    msgs: list[Any] = []
    for sub in subs:
        if len(msgs) >= batch:
            break
        try:
            msgs += await sub.fetch(batch - len(msgs), timeout=0.05 if msgs else 0.25)
        except TimeoutError:  # (nats raises its own subclass, or asyncio's)
            pass
    return msgs


async def _lag(js: Any, stream: Stream, take: list[int]) -> int:
    pending: int = sum([(await js.consumer_info(stream.name, stream.durable(k))).num_pending for k in take])
    STREAM_PENDING.set(pending)
    return pending


async def _take(nc: Any, js: Any, factory: Any, stream: Stream, msgs: list[Any], stats: Stats) -> None:
    taken: list[tuple[Any, EventIn]] = []
    dead: list[tuple[Any, dict[str, Any]]] = []
    for msg in msgs:
        try:
            taken.append((msg, EventIn.model_validate_json(msg.data)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "message"
            dead.append((msg, {"message": msg.data.decode("utf-8", "replace"),
                               "error": {"code": "invalid_event", "message": f"{where}: {first['msg']}"}}))
    events = [ev for _, ev in taken]

    def work(s: Session) -> list[dict[str, Any]]:
        return ingest(s, get_program(s, stream.program), events, now=utcnow(), actor=f"stream:{stream.name}",
                      strict=False)

    try:
        results = await asyncio.to_thread(run_in_transaction, factory, work) if events else []
    except Exception as exc:  # the database is away, or something failed the batch whole: it comes back later
        log.exception("a batch of %d messages failed; they will be redelivered", len(msgs))
        for msg, _ in taken:
            if msg.metadata.num_delivered >= MAX_DELIVERIES:  # (a poison message must not block its partition)
                dead.append((msg, {"message": msg.data.decode(), "error": {"code": "failed", "message": str(exc)}}))
            else:
                await msg.nak(delay=1.0)
        results = []
        taken = []
        await asyncio.sleep(1.5)  # (past the nak's delay: the batch is due again before the next fetch)
    count_events(results)
    for (msg, ev), r in zip(taken, results, strict=True):
        stats.counts[r["status"]] += 1
        STREAM_MESSAGES.labels(r["status"]).inc()
        if r["status"] == "rejected":
            dead.append((msg, {"event": ev.model_dump(mode="json"), "error": r["error"]}))
    unreadable = sum(1 for _, d in dead if "message" in d)
    stats.counts["dead"] += unreadable
    STREAM_MESSAGES.labels("dead").inc(unreadable)
    for msg, d in dead:  # keyed by the message's place in the stream: a re-send after a crash is dropped
        await js.publish(stream.dead, json.dumps({**d, "subject": msg.subject}, ensure_ascii=False).encode(),
                         headers={"Nats-Msg-Id": f"dead:{msg.metadata.sequence.stream}"})
    settled = {id(m) for m, _ in taken} | {id(m) for m, _ in dead}  # (a refused event is in both)
    for msg in msgs:
        if id(msg) in settled:
            await msg.ack()
    await nc.flush()  # the acks are on the server before the next batch is fetched
    stats.batches += 1
