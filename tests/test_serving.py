"""Production serving: /readyz (database answers, schema current), /metrics (Prometheus text: requests by
route, events by outcome, the outbox's lag), and `jifen serve --workers N` — several processes on one port,
their metrics added up, a clean exit on SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
from fastapi.testclient import TestClient
from sqlalchemy import text

from jifen.db import make_engine, make_sessionmaker, run_in_transaction
from jifen.members.service import create_member
from jifen.programs.service import get_program
from tests.conftest import api_key, keyed
from tests.support.intake import configure

JIFEN = str(Path(sys.executable).parent / "jifen")
T = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        m = re.fullmatch(rf"{name}(?:{{(.*)}})? (\S+)", line)
        if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    return 0.0


def test_readyz_is_ready_only_with_the_current_schema(app, factory):
    with TestClient(app) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        head = ready.json()["schema"]
        run_in_transaction(factory, lambda s: s.execute(text("UPDATE alembic_version SET version_num = '0001'")))
        try:
            stale = client.get("/readyz")
        finally:  # (the PostgreSQL database is the session's, shared with the tests that follow)
            run_in_transaction(factory, lambda s: s.execute(text("UPDATE alembic_version SET version_num = :v"),
                                                            {"v": head}))
        assert stale.status_code == 503
        assert stale.json()["error"]["code"] == "not_ready" and head in stale.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200  # alive all the same


def test_metrics_count_requests_events_and_the_outbox(app, factory):
    configure(factory)
    with keyed(TestClient(app)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert client.post("/v1/members", json={"member_id": "mia"}, headers=headers).status_code == 201
        before = client.get("/metrics").text
        for i in range(3):
            r = client.post("/v1/events", headers=headers, json={
                "event_id": f"mx-{i}", "member_id": "mia", "type": "purchase", "amount": "100", "occurred_at": T})
            assert r.status_code == 201
        assert client.post("/v1/events", headers=headers, json={
            "event_id": "mx-0", "member_id": "mia", "type": "purchase", "amount": "100", "occurred_at": T}).status_code == 200
        after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    grew = {k: sample(after.text, "jifen_events_total", status=k) - sample(before, "jifen_events_total", status=k)
            for k in ("processed", "replayed")}
    assert grew == {"processed": 3, "replayed": 1}
    route = {"method": "POST", "route": "/v1/events", "status": "2xx"}
    assert (sample(after.text, "jifen_http_request_duration_seconds_count", **route)
            - sample(before, "jifen_http_request_duration_seconds_count", **route)) == 4
    assert sample(after.text, "jifen_points_awarded_total") > sample(before, "jifen_points_awarded_total")
    assert sample(after.text, "jifen_ledger_entries_total") - sample(before, "jifen_ledger_entries_total") == 3
    assert sample(after.text, "jifen_outbox_waiting") >= 3  # each award's entry is in the outbox, not fanned out
    assert sample(after.text, "jifen_outbox_lag_seconds") >= 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_share_the_port_add_up_their_metrics_and_stop_on_sigterm(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory)

    def setup(s):
        program = get_program(s, "default")
        for i in range(8):
            create_member(s, program, f"w{i}")

    run_in_transaction(factory, setup)

    class _App:  # api_key takes an app for its sessions
        class state:  # noqa: N801
            sessions = factory

    secret = api_key(_App, "admin")
    port = _free_port()
    server = subprocess.Popen([JIFEN, "serve", "--workers", "2", "--port", str(port), "--no-jobs"],
                              env={**os.environ, "JIFEN_DATABASE_URL": pg_only_url}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "the server did not become ready in time"
            time.sleep(0.2)

        def send(i: int) -> int:
            return httpx.post(f"{base}/v1/events", timeout=30, headers={"Authorization": f"Bearer {secret}"},
                              json={"event_id": f"wk-{i}", "member_id": f"w{i % 8}", "type": "purchase",
                                    "amount": "50", "occurred_at": T}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(send, range(60))) == [201] * 60
        # Every scrape, whichever worker answers, adds up both workers' counts.
        for _ in range(4):
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert sample(metrics, "jifen_events_total", status="processed") == 60
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:  # the whole group: killing the parent alone would leave its workers serving
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        engine.dispose()
    assert server.returncode == 0, output
    assert "Finished server process" in output
