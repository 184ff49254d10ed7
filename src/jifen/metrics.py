"""Prometheus metrics (prometheus-client): what a process counts, and the scrape at GET /metrics.

With several server workers (`jifen serve --workers N`) each process writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (set by `serve` before the workers start) and a scrape adds them up
(prometheus-client's multiprocess mode); a single process serves its own registry. What the database
knows — the outbox's lag, notifications waiting and dead — is read at scrape time by the worker that answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Integer, text
from sqlalchemy.orm import Session, sessionmaker

from jifen.db import UTCDateTime, utcnow

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram("jifen_http_request_duration_seconds", "HTTP requests by route and status class",
                            ["method", "route", "status"],
                            buckets=(.002, .005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10))
EVENTS = Counter("jifen_events_total", "Events taken by the intake, by outcome (processed, replayed, rejected)",
                 ["status"])
POINTS = Counter("jifen_points_awarded_total", "Points awarded to processed events")
ENTRIES = Counter("jifen_ledger_entries_total", "Journal entries written for processed events (one per event and "
                  "wallet paid; each with its postings)")
RISK_BLOCKS = Counter("jifen_risk_blocks_total", "Events refused by risk control (risk_blocked)")
GROUP_SIZE = Histogram("jifen_group_commit_requests", "Single requests committed together in one transaction, by "
                       "kind (events, redemptions, audit lines)", ["kind"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
STREAM_MESSAGES = Counter("jifen_stream_messages_total", "JetStream messages taken, by outcome "
                          "(processed, replayed, rejected, dead)", ["status"])
STREAM_PENDING = Gauge("jifen_stream_pending", "JetStream messages of this consumer's partitions not yet "
                       "delivered (the lag)", multiprocess_mode="livesum")


class RequestTimer:
    """ASGI middleware: each request's duration, labelled with its route's template (not the raw path)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"  # (set by the router once matched)
            REQUEST_SECONDS.labels(scope["method"], route, f"{status // 100}xx").observe(time.perf_counter() - began)


class _Process:
    """This process's own registry, or every worker's files in multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get(MULTIPROCESS):
            yield from multiprocess.MultiProcessCollector(CollectorRegistry()).collect()
        else:
            yield from REGISTRY.collect()


_OUTBOX = text("SELECT count(*) AS waiting, min(created_at) AS oldest FROM outbox_messages WHERE fanned_out = false"
               ).columns(waiting=Integer(), oldest=UTCDateTime())
_DELIVERIES = text("SELECT status, count(*) FROM deliveries WHERE status IN ('pending', 'dead') GROUP BY status")


class _Database:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as s:
            waiting, oldest = s.execute(_OUTBOX).one()
            deliveries: dict[str, int] = {status: n for status, n in s.execute(_DELIVERIES)}
        lag = (utcnow() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily("jifen_outbox_waiting", "Outbox messages not yet fanned out", value=waiting)
        yield GaugeMetricFamily("jifen_outbox_lag_seconds", "Age of the oldest outbox message not yet fanned out",
                                value=max(lag, 0.0))
        yield GaugeMetricFamily("jifen_deliveries_pending", "Notification deliveries waiting to be sent",
                                value=deliveries.get("pending", 0))
        yield GaugeMetricFamily("jifen_deliveries_dead", "Notification deliveries dead-lettered (replayable)",
                                value=deliveries.get("dead", 0))


def count_events(results: list[dict[str, Any]]) -> None:
    """Committed events' outcomes (counted by the face that answered, once its transaction committed)."""
    for r in results:
        EVENTS.labels(r["status"]).inc()
        if r["status"] == "processed":
            POINTS.inc(max(int(r.get("points") or 0), 0))
            ENTRIES.inc(len(r.get("entries") or ()))
        elif r.get("error", {}).get("code") == "risk_blocked":
            RISK_BLOCKS.inc()


def scrape(sessions: sessionmaker[Session] | None = None) -> bytes:
    """The text exposition: this process (or all workers), and the database's queues when given sessions."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Process())
    if sessions is not None:
        registry.register(_Database(sessions))
    return generate_latest(registry)
