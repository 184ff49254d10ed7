"""PostgreSQL restarted under load — on a private cluster of the test's own (tests/support/private_postgres.py),
never the shared server. `jifen serve --workers 2` and the dispatcher (`jifen worker`) run against it while six
clients send purchases, each until it is answered, with the same event_id and Idempotency-Key every time. The
cluster is crash-restarted (`pg_ctl restart -m immediate`: no shutdown checkpoint, recovery from the WAL) and
then restarted cleanly (`-m fast`) mid-load. Afterwards: the same server processes answer again (no restart of
Jifen), every acknowledged event is in the ledger exactly once, `jifen ledger verify` passes, each member's
balance is the sum of their entries, and every points.awarded message the outbox held is delivered."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from jifen.db import run_in_transaction
from jifen.ledger.models import Account, JournalEntry
from jifen.members.models import Member
from jifen.notify import dispatcher, service
from jifen.notify.models import Delivery
from jifen.outbox import OutboxMessage
from jifen.programs.service import get_program
from jifen.setup import init_database
from tests.conftest import IN_CI, NOW
from tests.support.private_postgres import available, private_postgres
from tests.support.receivers import HttpReceiver
from tests.support.serving_faults import (
    JIFEN,
    Load,
    admin_secret,
    assert_exactly_once,
    prepared,
    serving,
    workers_of,
)

if (_missing := available()) and not IN_CI:
    pytest.skip(f"no private PostgreSQL cluster: {_missing}", allow_module_level=True)


def _restart_under(load: Load, cluster, mode: str) -> float:
    """Restart the cluster while `load` runs; the seconds from the server accepting connections again until
    Jifen's next acknowledgment (every connection it had died with the server: that answer came on a new one)."""
    cluster.restart(mode)
    up, at_up = time.monotonic(), len(load.acked)
    load.wait_for(at_up + 1)
    recovered = time.monotonic() - up
    load.wait_for(at_up + 20)
    return recovered


def test_postgresql_restarted_under_load_loses_nothing_doubles_nothing_and_jifen_recovers_by_itself():
    with private_postgres() as cluster:
        init_database(cluster.url)
        factory = prepared(cluster.url)
        receiver = HttpReceiver().start()
        run_in_transaction(factory, lambda s: service.subscribe(s, get_program(s, "default").id, receiver.url,
                                                                ["points.awarded"], NOW))
        worker = subprocess.Popen([JIFEN, "worker", "--interval", "3600"], env={
            **os.environ, "JIFEN_DATABASE_URL": cluster.url}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            with serving(cluster.url, workers=2) as (base, server):
                before = workers_of(server.pid)
                load = Load(base, admin_secret(factory))
                try:
                    load.wait_for(40)
                    recovered = {mode: _restart_under(load, cluster, mode) for mode in ("immediate", "fast")}
                    load.wait_for(len(load.acked) + 40)
                finally:
                    acked = load.stop()
                # The same server and workers answered throughout: nothing was restarted on Jifen's side.
                assert server.poll() is None and workers_of(server.pid) == before
                assert load.failed >= 1  # the restarts were felt (and retried)
            # The dispatcher came back too: what was acknowledged last gets delivered without a restart.
            last = f"event:{acked[-1]}"
            deadline = time.monotonic() + 60
            while last not in _references(receiver):
                assert time.monotonic() < deadline and worker.poll() is None, "the dispatcher delivers nothing"
                time.sleep(0.2)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        try:
            # A dispatcher started afterwards sends what the killed one left under its lease.
            dispatcher.run_once(factory, dt.datetime.now(dt.UTC) + dispatcher.LEASE + dt.timedelta(seconds=1))
            with factory() as s:
                awarded = s.scalar(select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.topic == "points.awarded"))
                statuses = Counter(s.scalars(select(Delivery.status).where(Delivery.channel == "webhook")))
                assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.fanned_out.is_(False))) == 0
                sums = dict(s.execute(select(Member.member_id, func.sum(JournalEntry.points)).join(
                    JournalEntry, JournalEntry.member_pk == Member.id).group_by(Member.member_id)).all())
                balances = dict(s.execute(select(Member.member_id, func.sum(Account.balance)).join(
                    Account, Account.member_pk == Member.id).group_by(Member.member_id)).all())
        finally:
            receiver.stop()
        assert statuses == {"delivered": awarded}
        assert _references(receiver) >= {f"event:{e}" for e in acked}
        assert_exactly_once(factory, acked)
        assert balances == sums and sum(sums.values()) > 0
        verified = subprocess.run([JIFEN, "ledger", "verify"], env={**os.environ, "JIFEN_DATABASE_URL": cluster.url},
                                  capture_output=True, text=True, timeout=300)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        factory.kw["bind"].dispose()
        print(f"\nPostgreSQL restarted: {len(acked)} events acknowledged, {load.failed} sends retried, "
              f"pg_ctl restart -m immediate / fast {cluster.restarts[0]:.1f} / {cluster.restarts[1]:.1f} s, Jifen's next "
              f"answer {recovered['immediate']:.1f} / {recovered['fast']:.1f} s after the server was up; "
              f"{awarded} webhooks delivered, {len(receiver.received) - awarded} sent twice")


def _references(receiver: HttpReceiver) -> set[str]:
    return {json.loads(body)["data"].get("reference") for _, body in list(receiver.received)}
