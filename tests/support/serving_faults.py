"""Shared by the fault tests on real processes (tests/test_faults.py, tests/test_pg_restart.py): `jifen serve` in a
process group of its own, client threads sending purchases until each is answered (the same event_id and
Idempotency-Key every time, as a client must), and the check that every acknowledged event is in the ledger
exactly once."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker
from jifen.ledger.models import JournalEntry
from jifen.ledger.verify import verify
from tests.conftest import api_key
from tests.support.intake import add_members, configure
from tests.support.receivers import free_port

JIFEN = str(Path(sys.executable).parent / "jifen")
T = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
MEMBERS = [f"f{i}" for i in range(8)]


def prepared(url: str):
    """Sessions on `url`, the demo programme configured and MEMBERS added."""
    factory = make_sessionmaker(make_engine(url))
    configure(factory)
    add_members(factory, *MEMBERS)
    return factory


def admin_secret(factory) -> str:
    class _App:  # api_key takes an app for its sessions
        class state:  # noqa: N801
            sessions = factory

    return api_key(_App, "admin")


@contextlib.contextmanager
def serving(url: str, workers: int):
    """`jifen serve` in a process group of its own, ready; the whole group killed at the end."""
    port = free_port()
    server = subprocess.Popen([JIFEN, "serve", "--workers", str(workers), "--port", str(port), "--no-jobs"],
                              env={**os.environ, "JIFEN_DATABASE_URL": url}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not ready(base):
            assert server.poll() is None and time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        yield base, server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class Load:
    """Client threads each sending purchases one after the other, every one until it is answered 201 (or 200,
    a replay): the acknowledged event ids, and how many sends went unanswered or failed."""

    def __init__(self, base: str, secret: str, clients: int = 6, prefix: str = "c"):
        self.acked: list[str] = []
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(base, secret, f"{prefix}{k}"))
                         for k in range(clients)]
        for t in self._threads:
            t.start()

    def _client(self, base: str, secret: str, name: str) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                body = {"event_id": f"{name}-{i}", "member_id": MEMBERS[i % len(MEMBERS)], "type": "purchase",
                        "amount": "50", "occurred_at": T, "order_id": f"{name}-{i}"}
                while True:
                    try:
                        r = http.post(f"{base}/v1/events", json=body, headers={"Idempotency-Key": body["event_id"]})
                        if r.status_code in (200, 201):
                            break
                    except httpx.TransportError:
                        pass
                    with self._lock:
                        self.failed += 1
                    time.sleep(0.1)
                with self._lock:
                    self.acked.append(body["event_id"])
                i += 1

    def wait_for(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n:
            assert time.monotonic() < deadline, f"only {len(self.acked)} of {n} events acknowledged"
            time.sleep(0.05)

    def stop(self) -> list[str]:
        self._stop.set()
        for t in self._threads:
            t.join(120)
        return self.acked


def assert_exactly_once(factory, acked: list[str]) -> None:
    assert len(set(acked)) == len(acked)
    with factory() as s:
        per = Counter(dict(s.execute(select(JournalEntry.reference, func.count()).where(
            JournalEntry.reference.like("event:%")).group_by(JournalEntry.reference)).all()))
        assert verify(s) == []
    assert {e: per[f"event:{e}"] for e in acked} == dict.fromkeys(acked, 1)


def workers_of(pid: int) -> set[int]:
    """Uvicorn's worker processes under the server's parent (multiprocessing's resource tracker left out)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
    return found
