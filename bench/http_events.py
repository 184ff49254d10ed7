"""Event intake over HTTP: requests per second and latency (wrk), beside GET /healthz on the same
server in the same run (the floor of FastAPI + Uvicorn + one database round trip).

    .venv/bin/python bench/http_events.py [--seconds 10] [--connections 8]     (needs Debian's wrk)
    .venv/bin/python bench/http_events.py --group-commit [--clients 8,32,64] [--workers 1,2] [--pg-url URL] [--no-report]

One `jifen serve` process (one Uvicorn worker, seed 001's programme, 200 members). POST /v1/events sends one
purchase per request with a unique event_id; POST /v1/events/batch sends 100 per request. By default on
embedded SQLite. --group-commit: on a scratch PostgreSQL database, single events from each number of
concurrent clients to a server with group commit (JIFEN_GROUP_COMMIT_MS, flows/group_commit.py) and to one
without (0), each with one and with two Uvicorn workers (--workers), beside `pgbench -b tpcb-like` with as many
clients on the same server in the same run; it rewrites its section of docs/benchmarks.md unless --no-report.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from events import seed  # noqa: E402 - the same programme and members as bench/events.py
from jifen.db import make_engine, make_sessionmaker, run_in_transaction  # noqa: E402
from jifen.programs.service import get_program  # noqa: E402
from jifen.security.service import create_api_key  # noqa: E402
from ledger_ops import pgbench, scratch_databases  # noqa: E402 - the same PostgreSQL baseline as the ledger bench
from report import replace_section  # noqa: E402

LUA = r"""
local n, batch = 0, tonumber(os.getenv("BATCH") or "0")
local tag, at = os.getenv("TAG"), os.getenv("AT")
local function one()
  n = n + 1
  return string.format('{"event_id":"%s-%d-%d","member_id":"B%d","type":"purchase","amount":"%d.%02d",' ..
    '"occurred_at":"%s","order_id":"%s-%d-%d","channel":"app"}', tag, math.random(1e9), n, math.random(0, 199),
    math.random(1, 400), math.random(0, 99), at, tag, math.random(1e9), n)
end
request = function()
  local body
  if batch > 0 then
    local parts = {}
    for i = 1, batch do parts[i] = one() end
    body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  else
    body = one()
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer " .. os.getenv("KEY")}, body)
end
"""


def wrk(url: str, seconds: int, connections: int, script: Path | None = None, env=None) -> dict:
    # A 10 s timeout (wrk's default is 2 s): a slow answer is measured, not dropped from the latencies.
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "--latency", url]
    if script:
        args[1:1] = ["-s", str(script)]
    text = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])

    def ms(label):
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    timeouts = re.search(r"timeout (\d+)", text)  # (wrk's "Socket errors" line)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"),
            "errors": (int(errors[1]) if errors else 0) + (int(timeouts[1]) if timeouts else 0)}


def free_port() -> int:
    """A port nothing listens on now: two benches (or a bench and a test run) at once do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# One API key sends every request: its rate limit (1,200 a minute by default) would answer 429 instead.
KEY_RATE = {"JIFEN_KEY_RATE": "1000000/minute"}


def prepare(url: str) -> str:
    """Seed the database; a fresh API key."""
    seed(url)
    engine = make_engine(url)
    key = run_in_transaction(make_sessionmaker(engine), lambda s: create_api_key(
        s, get_program(s, "default"), "pos", "bench"))[1]
    engine.dispose()
    return key


@contextlib.contextmanager
def serving(url: str, workers: int = 1, **env: str):
    """`jifen serve` (one Uvicorn worker unless told) on the database, with extra JIFEN_* settings, until the
    block ends."""
    with server_process(url, workers, **env) as (base, _):
        yield base


@contextlib.contextmanager
def server_process(url: str, workers: int = 1, **env: str):
    """`serving`, giving the process too (the flash-sale bench profiles it, the soak watches its memory)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from jifen.cli import main; main()", "serve", "--port",
                               str(port), "--no-jobs", "--workers", str(workers)],
                              env=os.environ | {"JIFEN_DATABASE_URL": url} | KEY_RATE | env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # (up to a minute: a loaded machine imports slowly)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.terminate()
        server.wait()


def post_events(base: str, script: Path, key: str, tag: str, seconds: int, connections: int, batch: int = 0) -> dict:
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    env = os.environ | {"KEY": key, "TAG": tag, "AT": at, "BATCH": str(batch)}
    return wrk(f"{base}/v1/events" + ("/batch" if batch else ""), seconds, connections, script, env)


def sqlite_run(args, tmp: Path) -> None:
    url = f"sqlite:///{tmp}/bench.db"
    key = prepare(url)
    script = tmp / "events.lua"
    script.write_text(LUA)
    with serving(url) as base:
        rows = [("GET /healthz (baseline)", wrk(f"{base}/healthz", args.seconds, args.connections), 1)]
        for path, batch in (("/v1/events", 0), ("/v1/events/batch", 100)):
            rows.append((f"POST {path}" + (f" ({batch} events)" if batch else ""),
                         post_events(base, script, key, f"b{batch}", args.seconds, args.connections, batch),
                         batch or 1))
    print(f"| request | requests/s | events/s | p50 ms | p99 ms | non-2xx | ({args.connections} connections, "
          f"{args.seconds} s) |")
    print("|---|---|---|---|---|---|---|")
    for name, r, per in rows:
        print(f"| {name} | {r['rps']:,.0f} | {r['rps'] * per:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['errors']} | |")


def group_commit_run(args, tmp: Path) -> None:
    clients = [int(c) for c in args.clients.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    script = tmp / "events.lua"
    script.write_text(LUA)
    rows = []
    with scratch_databases(args.pg_url) as (url, bench_db):
        key = prepare(url)
        for ms in ("0", args.window):
            for w in workers:
                with serving(url, w, JIFEN_GROUP_COMMIT_MS=ms) as base:
                    for n in clients:
                        rows.append((ms, w, n, post_events(base, script, key, f"g{ms}-{w}-{n}", args.seconds, n)))
        tps = {n: pgbench(bench_db, n, args.seconds, "tpcb-like") for n in clients}
    lines = [f"`python bench/http_events.py --group-commit --seconds {args.seconds} --clients {args.clients} --workers "
             f"{args.workers}`. Single purchases (`POST /v1/events`, one event per request, a unique event_id each, "
             "200 members, seed 001's rules) from wrk's concurrent keep-alive connections to `jifen serve` on a "
             "scratch PostgreSQL database, with group commit (JIFEN_GROUP_COMMIT_MS) and without (0). Baseline, "
             "same run and server: `pgbench -b tpcb-like` with as many clients. The goal (issue 14) is ≥ 0.3 × "
             "pgbench at 8–64 clients with p99 < 50 ms.", "",
             f"| POST /v1/events | server processes | clients | requests/s | p50 ms | p99 ms | non-2xx | pgbench -b "
             f"tpcb-like, same clients ({args.seconds} s each) | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for ms, w, n, r in rows:
        mode = "each request alone (0 ms)" if ms == "0" else f"group commit ({ms} ms)"
        lines.append(f"| {mode} | {w} | {n} | {r['rps']:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} | "
                     f"{tps[n]:,.0f} tps | {r['rps'] / tps[n]:.2f} |")
    print("\n".join(lines))
    if not args.no_report:
        replace_section("Single events over HTTP, PostgreSQL", "\n".join(lines), pg_url=args.pg_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--group-commit", action="store_true", help="with and without group commit, on PostgreSQL")
    parser.add_argument("--clients", default="8,32,64", help="concurrent clients of the --group-commit runs")
    parser.add_argument("--workers", default="1,2", help="server processes (`jifen serve --workers`) of the "
                        "--group-commit runs: each gathers its own groups")
    parser.add_argument("--window", default="2", help="JIFEN_GROUP_COMMIT_MS of the group commit runs")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite docs/benchmarks.md (--group-commit)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        (group_commit_run if args.group_commit else sqlite_run)(args, Path(tmp))


if __name__ == "__main__":
    main()
