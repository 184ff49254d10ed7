"""Faults on real processes, PostgreSQL: an API worker of `jifen serve --workers 2` killed with SIGKILL under load,
the notification dispatcher (`jifen worker`) killed with SIGKILL mid-delivery, and the connections between Jifen
and PostgreSQL cut by a TCP proxy mid-load and then restored. Clients send each event until it is answered (the
same event_id and Idempotency-Key every time), as a client must; afterwards every acknowledged event is in the
ledger exactly once and `ledger.verify` is clean. (The shared PostgreSQL server itself is never touched.)"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import threading
import time
from collections import Counter

from sqlalchemy import select
from sqlalchemy.engine import make_url

from jifen.db import run_in_transaction
from jifen.notify import dispatcher, service
from jifen.notify.models import Delivery
from jifen.programs.service import get_program
from tests.conftest import NOW
from tests.support.intake import send_one
from tests.support.receivers import HttpReceiver, free_port
from tests.support.serving_faults import (
    JIFEN,
    MEMBERS,
    Load,
    admin_secret,
    assert_exactly_once,
    prepared,
    serving,
    workers_of,
)


def test_an_api_worker_killed_under_load_loses_nothing_and_is_replaced(pg_only_url):
    factory = prepared(pg_only_url)
    with serving(pg_only_url, workers=2) as (base, server):
        before = workers_of(server.pid)
        assert len(before) == 2
        load = Load(base, admin_secret(factory))
        try:
            load.wait_for(40)
            victim = max(before)
            os.kill(victim, signal.SIGKILL)
            killed_at = len(load.acked)
            load.wait_for(killed_at + 80)  # the service goes on answering
            # Uvicorn's supervisor replaces the dead worker with a new process.
            deadline = time.monotonic() + 60
            while len(after := workers_of(server.pid)) < 2:
                assert time.monotonic() < deadline, f"workers after the kill: {after}"
                time.sleep(0.2)
            assert victim not in after and len(after & before) == 1
        finally:
            acked = load.stop()
        assert server.poll() is None
        print(f"\nworker killed: {len(acked)} events acknowledged, {load.failed} sends retried")
    assert_exactly_once(factory, acked)


def test_the_dispatcher_killed_mid_delivery_delivers_everything_after_its_lease(pg_only_url):
    factory = prepared(pg_only_url)
    receiver = HttpReceiver().start()
    receiver.delay = 0.05
    try:
        run_in_transaction(factory, lambda s: service.subscribe(s, get_program(s, "default").id, receiver.url,
                                                                ["points.awarded"], NOW))
        for i in range(60):
            send_one(factory, MEMBERS[i % len(MEMBERS)], amount=50, order_id=f"D{i}", now=NOW)
        worker = subprocess.Popen([JIFEN, "worker", "--interval", "3600"], env={
            **os.environ, "JIFEN_DATABASE_URL": pg_only_url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while len(receiver.received) < 10:
                assert time.monotonic() < deadline and worker.poll() is None, "the worker delivered nothing"
                time.sleep(0.01)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        with factory() as s:
            hooks = list(s.scalars(select(Delivery).where(Delivery.channel == "webhook")))
        assert len(hooks) == 60
        leased = {f"jd_{d.id}" for d in hooks if d.status == "sending"}
        assert leased  # killed mid-batch: claimed deliveries left under their lease
        # Restarted at once, the dispatcher leaves leased deliveries alone (their sender may still be alive) …
        at_kill = len(receiver.received)
        dispatcher.run_once(factory)
        assert not {h["webhook-id"] for h, _ in receiver.received[at_kill:]} & leased
        # … and once the lease has run out, sends every one of them again, with the same webhook-id.
        dispatcher.run_once(factory, dt.datetime.now(dt.UTC) + dispatcher.LEASE + dt.timedelta(seconds=1))
        ids = [h["webhook-id"] for h, _ in receiver.received]
        with factory() as s:
            assert set(s.scalars(select(Delivery.status).where(Delivery.channel == "webhook"))) == {"delivered"}
        assert set(ids) == {f"jd_{d.id}" for d in hooks}  # every message delivered, at least once
        doubled = {i for i, n in Counter(ids).items() if n > 1}
        assert doubled <= leased  # only what the killed dispatcher had claimed can arrive twice: dedupe on webhook-id
        print(f"\ndispatcher killed: 60 webhooks, {len(leased)} leased at the kill, {len(doubled)} received twice")
    finally:
        receiver.stop()


class Proxy:
    """A TCP proxy to PostgreSQL on its own event loop: `cut()` aborts every connection through it and refuses
    new ones until `restore()`."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self.down = False
        self.cut_connections = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._run, args=(started,), daemon=True).start()
        started.wait(10)

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
        started.set()
        self._loop.run_forever()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._open |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._open.discard(writer)

    def _abort_all(self) -> None:
        self.cut_connections += len(self._open) // 2
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def cut(self) -> None:
        self.down = True
        self._loop.call_soon_threadsafe(self._abort_all)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        self._server.close()
        self._abort_all()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


def test_database_connections_cut_mid_load_the_service_recovers_without_restart(pg_only_url):
    factory = prepared(pg_only_url)
    target = make_url(pg_only_url)
    proxy = Proxy(target.host or "127.0.0.1", target.port or 5432)
    try:
        via_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with serving(via_proxy, workers=1) as (base, server):
            load = Load(base, admin_secret(factory))
            try:
                load.wait_for(40)
                proxy.cut()
                time.sleep(3)  # the database unreachable for 3 s
                during = load.failed
                proxy.restore()
                restored_at = len(load.acked)
                load.wait_for(restored_at + 80)  # answered again, by the same process
            finally:
                acked = load.stop()
            assert server.poll() is None and proxy.cut_connections >= 1 and during >= 1
            print(f"\nconnections cut: {proxy.cut_connections} cut, {len(acked)} events acknowledged, "
                  f"{load.failed} sends retried")
    finally:
        proxy.close()
    assert_exactly_once(factory, acked)
