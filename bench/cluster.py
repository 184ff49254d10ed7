"""A miniature cluster on one machine: `jifen serve --workers 2` and two `jifen events consume` processes on one
PostgreSQL database and one NATS JetStream stream, with load from HTTP clients and from a stream publisher at
once. A third of the way in, one API worker and one consumer are killed with SIGKILL (the consumer restarted
two seconds later, as systemd would; Uvicorn's supervisor replaces the worker). Nothing may be lost or doubled.

    python bench/cluster.py [--seconds S] [--clients C] [--members M] [--pg-url URL] [--nats URL] [--no-docs]

Counted from the ledger at the end: every event an HTTP client got a 200/201 for, and every event the stream
acknowledged, is stored once with exactly one journal entry; `ledger.verify` is clean. A client whose request
failed (its worker killed mid-request) sends the same event again until it is answered, as a client must.
Throughput is the number of stored events per second, before, during (the 10 s after the kill) and after.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import func, select

from intake import database, seed
from jifen.db import make_engine, make_sessionmaker, run_in_transaction
from jifen.events.models import Event
from jifen.events.schemas import EventIn
from jifen.flows.stream import Stream, publish
from jifen.ledger.models import JournalEntry
from jifen.ledger.verify import verify
from jifen.programs.service import get_program
from jifen.security.service import create_api_key
from report import replace_section

JIFEN = str(Path(sys.executable).parent / "jifen")


def children(pid: int) -> list[int]:
    """Process ids whose parent is pid (from /proc), multiprocessing's resource tracker left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _event(tag: str, i: int, members: int) -> dict:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    return {"event_id": f"{tag}-{i}", "member_id": f"B{i % members}", "type": "purchase", "amount": "88.00",
            "occurred_at": at.isoformat(), "order_id": f"SO-{tag}-{i}", "attributes": {"device_id": f"phone-{i % members}"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    stream = Stream(f"CLUSTER{uuid.uuid4().hex[:8]}", "default", 8)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with database("postgresql", args.pg_url, Path("/tmp")) as url:
        print(f"seeding {args.members:,} members …", file=sys.stderr, flush=True)
        seed(url, args.members)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        secret = run_in_transaction(factory, lambda s: create_api_key(s, get_program(s, "default"), "admin", "bench"))[1]
        env = {**os.environ, "JIFEN_DATABASE_URL": url}
        server = subprocess.Popen([JIFEN, "serve", "--workers", "2", "--port", str(port), "--no-jobs"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def consumer(take: str) -> subprocess.Popen:
            return subprocess.Popen([JIFEN, "events", "consume", "--stream", stream.name, "--partitions", "8",
                                     "--take", take, "--batch", "200", "--ack-wait", "5"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        consumers = [consumer("0,1,2,3"), consumer("4,5,6,7")]
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                sys.exit("the server did not become ready")
            time.sleep(0.3)
        print(f"load for {args.seconds:.0f} s: {args.clients} HTTP clients and a stream publisher …",
              file=sys.stderr, flush=True)
        acked_http: list[str] = []
        published: list[str] = []
        retries = [0]
        stop = threading.Event()
        lock = threading.Lock()

        def client(k: int) -> None:
            with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=60) as http:
                i = 0
                while not stop.is_set():
                    body = _event(f"h{k}", i, args.members)
                    while True:  # the same event again until answered: a killed worker's request is retried
                        try:
                            r = http.post(f"{base}/v1/events", json=body)
                            if r.status_code in (200, 201):
                                break
                        except httpx.TransportError:
                            pass
                        with lock:
                            retries[0] += 1
                        time.sleep(0.2)
                    with lock:
                        acked_http.append(body["event_id"])
                    i += 1

        def publisher() -> None:
            i = 0
            while not stop.is_set():
                chunk = [EventIn.model_validate(_event("s", i + j, args.members)) for j in range(50)]
                asyncio.run(publish(args.nats, stream, chunk))
                published.extend(e.event_id for e in chunk)
                i += 50
                time.sleep(0.5)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        threads.append(threading.Thread(target=publisher))
        began = time.monotonic()
        for t in threads:
            t.start()
        stored: list[tuple[float, int]] = []
        killed_at = None
        with factory() as s:
            while time.monotonic() - began < args.seconds:
                stored.append((time.monotonic() - began, s.scalar(select(func.count()).select_from(Event))))
                s.rollback()
                if killed_at is None and time.monotonic() - began >= args.seconds / 3:
                    workers = children(server.pid)
                    os.kill(max(workers), signal.SIGKILL)
                    consumers[0].send_signal(signal.SIGKILL)
                    consumers[0].wait()
                    killed_at = time.monotonic() - began
                    print(f"  {killed_at:.0f} s: killed API worker {max(workers)} and consumer {consumers[0].pid}",
                          file=sys.stderr, flush=True)
                    time.sleep(2)
                    consumers[0] = consumer("0,1,2,3")
                time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
        print("draining the stream …", file=sys.stderr, flush=True)
        want = set(acked_http) | set(published)
        deadline = time.monotonic() + 300
        while True:
            with factory() as s:
                have = s.scalar(select(func.count()).select_from(Event).where(Event.event_id.in_(list(want))))
            if have == len(want) or time.monotonic() > deadline:
                break
            time.sleep(1)
        for proc in [*consumers, server]:
            proc.send_signal(signal.SIGTERM)
        for proc in [*consumers, server]:
            proc.wait(60)
        with factory() as s:
            per = dict(s.execute(select(JournalEntry.reference, func.count()).where(
                JournalEntry.reference.in_([f"event:{e}" for e in want])).group_by(JournalEntry.reference)).all())
            problems = verify(s)
        engine.dispose()
        asyncio.run(_drop(args.nats, stream))
    missing = len(want) - len(per)
    doubled = sum(1 for n in per.values() if n > 1)
    if missing or doubled or problems:
        sys.exit(f"FAILED: {missing} acknowledged events missing, {doubled} doubled, verify: {problems[:3]}")

    def rate(lo: float, hi: float) -> float:
        pts = [(t, n) for t, n in stored if lo <= t <= hi]
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]) if len(pts) > 1 else 0.0

    assert killed_at is not None
    before, during, after = rate(2, killed_at), rate(killed_at, killed_at + 10), rate(killed_at + 10, args.seconds)
    table = "\n".join([
        "| what | figure |",
        "|---|---|",
        f"| events acknowledged: HTTP ({args.clients} clients) / stream | {len(acked_http):,} / {len(published):,} |",
        f"| after SIGKILL of 1 of 2 API workers and 1 of 2 consumers: lost / doubled | {missing} / {doubled} "
        f"(`ledger.verify` clean) |",
        f"| HTTP requests retried (their worker killed, or refused while it restarted) | {retries[0]:,} |",
        f"| stored events/s: before / 10 s after the kill / after | {before:,.0f} / {during:,.0f} / {after:,.0f} |",
    ])
    print(table)
    if not args.no_docs:
        replace_section("A miniature cluster with failures", f"`python bench/cluster.py --seconds {args.seconds:g} "
                        f"--clients {args.clients} --members {args.members}`: 2 API workers + 2 stream consumers, "
                        f"one of each killed with SIGKILL a third of the way in.\n\n{table}\n", pg_url=args.pg_url)


async def _drop(nats_url: str, stream: Stream) -> None:
    import nats

    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_stream(stream.name)
    await nc.close()


if __name__ == "__main__":
    main()
