"""Events from NATS JetStream (`jifen events publish` / `consume`): acknowledged only after their batch has
committed, so a consumer killed with SIGKILL mid-run and started again takes every event exactly once;
refused events and unreadable messages go to the dead-letter subject with their error."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nats
from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker
from jifen.events.models import Event
from jifen.flows.stream import Stream, consume, publish
from jifen.ledger.models import JournalEntry
from tests.conftest import NOW, Ledger
from tests.support.intake import add_members, configure, event

JIFEN = str(Path(sys.executable).parent / "jifen")


def _stream(partitions: int = 4) -> Stream:
    return Stream(f"T{uuid.uuid4().hex[:10]}", "default", partitions)


async def _delete(nats_url: str, stream: Stream) -> None:
    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_stream(stream.name)
    await nc.close()


async def _dead_letters(nats_url: str, stream: Stream) -> list[dict]:
    nc = await nats.connect(nats_url)
    sub = await nc.jetstream().pull_subscribe(stream.dead, durable="reader", stream=stream.name)
    try:
        return [json.loads(m.data) for m in await sub.fetch(100, timeout=2)]
    finally:
        await nc.close()


async def _waiting(nats_url: str, stream: Stream) -> int:
    """Messages not yet delivered or delivered and not acknowledged, over all partitions."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        infos = [await js.consumer_info(stream.name, stream.durable(k)) for k in range(stream.partitions)]
        return sum(i.num_pending + i.num_ack_pending for i in infos)
    finally:
        await nc.close()


def _consumer(url: str, stream: Stream, *more: str) -> subprocess.Popen:
    return subprocess.Popen([JIFEN, "events", "consume", "--stream", stream.name, "--partitions",
                             str(stream.partitions), "--batch", "100", "--ack-wait", "2", *more],
                            env={**os.environ, "JIFEN_DATABASE_URL": url}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _stored(factory, prefix: str) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(Event).where(Event.event_id.startswith(prefix)))


def test_a_consumer_killed_mid_run_loses_nothing_and_doubles_nothing(pg_only_url, nats_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}})
    members = [f"s{i}" for i in range(40)]
    add_members(factory, *members)
    n = 1500
    events = [event(members[i % 40], amount=10 + i % 90, order_id=f"o{i}", event_id=f"k-{i}",
                    at=NOW + dt.timedelta(seconds=i)) for i in range(n)]
    stream = _stream()
    try:
        assert asyncio.run(publish(nats_url, stream, events)) == n
        first = _consumer(pg_only_url, stream)
        deadline = time.monotonic() + 120
        while _stored(factory, "k-") < 200 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # in the middle of a batch, most likely: batches follow each other
        first.wait()
        taken_before = _stored(factory, "k-")
        assert 0 < taken_before < n, first.stdout.read() if first.stdout else ""
        second = _consumer(pg_only_url, stream, "--until-idle", "4")
        output, _ = second.communicate(timeout=600)
        assert second.returncode == 0, output
        assert asyncio.run(_waiting(nats_url, stream)) == 0
    finally:
        asyncio.run(_delete(nats_url, stream))
    with factory() as s:
        per_event = dict(s.execute(select(JournalEntry.reference, func.count()).where(
            JournalEntry.reference.startswith("event:k-")).group_by(JournalEntry.reference)).all())
        statuses = s.scalars(select(Event.result).where(Event.event_id.startswith("k-"))).all()
    assert _stored(factory, "k-") == n
    assert per_event == {f"event:k-{i}": 1 for i in range(n)}  # every event awarded, each exactly once
    assert all(r["entries"] for r in statuses)
    assert Ledger(factory).verify() == []
    engine.dispose()


def test_refused_events_and_unreadable_messages_go_to_the_dead_letters(factory, db_url, nats_url):
    configure(factory, {"pending_days": {}})
    add_members(factory, "alice")
    stream = _stream(2)
    good = [event("alice", amount=100, order_id=f"d{i}", event_id=f"d-{i}", at=NOW) for i in range(3)]
    stranger = event("nobody", amount=5, event_id="d-stranger", at=NOW)

    async def garbage() -> None:
        nc = await nats.connect(nats_url)
        await nc.jetstream().publish(stream.subject(1), b'{"event_id": "x", "member_id": 7}')
        await nc.close()

    try:
        assert asyncio.run(publish(nats_url, stream, [*good, stranger])) == 4
        assert asyncio.run(publish(nats_url, stream, good)) == 3  # a re-publish: JetStream drops it (Msg-Id)
        asyncio.run(garbage())
        stats = asyncio.run(consume(db_url, nats_url, stream, [0, 1], until_idle=1.5))
        dead = asyncio.run(_dead_letters(nats_url, stream))
    finally:
        asyncio.run(_delete(nats_url, stream))
    assert dict(stats.counts) == {"processed": 3, "rejected": 1, "dead": 1}
    assert sorted(d["error"]["code"] for d in dead) == ["invalid_event", "unknown_member"]
    refused = next(d for d in dead if d["error"]["code"] == "unknown_member")
    assert refused["event"]["event_id"] == "d-stranger"
    unreadable = next(d for d in dead if d["error"]["code"] == "invalid_event")
    assert unreadable["message"] == '{"event_id": "x", "member_id": 7}' and "member_id" in unreadable["error"]["message"]
    assert Ledger(factory).balances("alice")["available"] > 0
    assert _stored(factory, "d-") == 3
