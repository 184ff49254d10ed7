"""Balance reads under the HTTP write load: p50 / p99 of GET /v1/members/{id}/balance beside GET /healthz (the
floor: FastAPI + Uvicorn + one database round trip), first on an idle server, then while concurrent clients
POST single events (group commit on, the server's default) to the same server, on a scratch PostgreSQL database.

    .venv/bin/python bench/balance_read.py [--seconds 20] [--writers 64] [--readers 4] [--pg-url URL] [--no-report]

One `jifen serve` process (as bench/http_events.py starts it: seed 001's programme, 200 members). Readers are
`readers` connections for each GET, one read every 10 ms each (a member centre, not a flood); writers are
`writers` connections each sending its next purchase as soon as the last is answered (bench/httpload.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from http_events import prepare, serving  # noqa: E402 - the same programme, members and server
from httpload import Call, percentile, run, run_clients  # noqa: E402
from ledger_ops import scratch_databases  # noqa: E402
from report import replace_section  # noqa: E402

MEMBERS = 200  # (bench/events.py's seed)


def reads(key: str, path: str | None) -> Iterator[Call]:
    auth = {"Authorization": f"Bearer {key}"}
    for _ in itertools.count():
        yield Call("GET", path or f"/v1/members/B{random.randrange(MEMBERS)}/balance", auth)


def purchases(key: str, tag: str) -> Iterator[Call]:
    auth = {"Authorization": f"Bearer {key}"}
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    for n in itertools.count():
        yield Call("POST", "/v1/events", auth, {
            "event_id": f"{tag}-{n}", "member_id": f"B{random.randrange(MEMBERS)}", "type": "purchase",
            "amount": f"{random.randint(1, 400)}.{random.randint(0, 99):02d}", "occurred_at": at,
            "order_id": f"{tag}-{n}", "channel": "app"})


async def phase(base: str, key: str, seconds: float, readers: int, writers: int) -> dict[str, list]:
    """Answers per kind ('GET /healthz', 'GET balance', 'POST /v1/events') over `seconds`."""
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    kinds = {"GET /healthz": [reads(key, "/healthz") for _ in range(readers)],
             "GET balance": [reads(key, None) for _ in range(readers)],
             "POST /v1/events": [purchases(key, f"w{i}-{random.getrandbits(32)}") for i in range(writers)]}
    runs = [run_clients(base, clients, stop, pause=0.01 if kind.startswith("GET") else 0)
            for kind, clients in kinds.items()]
    done = await asyncio.gather(*runs)
    return {kind: answers for kind, (answers, _) in zip(kinds, done, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, scratch_databases(args.pg_url) as (url, _):
        os.environ["JIFEN_DATA_KEY_FILE"] = str(Path(tmp) / "data.key")
        key = prepare(url)
        with serving(url) as base:
            for label, writers in (("idle", 0), (f"{args.writers} writers", args.writers)):
                answers = run(lambda w=writers: phase(base, key, args.seconds, args.readers, w))
                for kind, got in answers.items():
                    if not got:
                        continue
                    ms = [a.seconds * 1000 for _, a in got]
                    failed = sum(a.status >= 300 for _, a in got)
                    rows.append(f"| {label} | {kind} | {len(got) / args.seconds:,.0f} | {percentile(ms, 50):.1f} | "
                                f"{percentile(ms, 99):.1f} | {failed} |")
    md = f"""GET /v1/members/{{id}}/balance and GET /healthz from {args.readers} connections each (a read every 10 ms
each), on an idle server and while {args.writers} connections POST single purchases back to back (group commit
on); {args.seconds:g} s per phase, one `jifen serve` process on PostgreSQL.

| load | request | requests/s | p50 ms | p99 ms | non-2xx |
|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    print(md)
    if not args.no_report:
        replace_section("Balance reads under the write load, PostgreSQL", md, pg_url=args.pg_url)


if __name__ == "__main__":
    main()
