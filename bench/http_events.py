"""Event intake over HTTP: requests per second and latency (wrk), beside GET /healthz on the same
server in the same run (the floor of FastAPI + Uvicorn + one database round trip).

    .venv/bin/python bench/http_events.py [--seconds 10] [--connections 8]     (needs Debian's wrk)

One `jifen serve` process (one Uvicorn worker, embedded SQLite, seed 001's programme, 200 members).
POST /v1/events sends one purchase per request with a unique event_id; POST /v1/events/batch sends
100 per request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
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
    args = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", url]
    if script:
        args[1:1] = ["-s", str(script)]
    text = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])

    def ms(label):
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "errors": int(errors[1]) if errors else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seed(url)
        engine = make_engine(url)
        key = run_in_transaction(make_sessionmaker(engine), lambda s: create_api_key(
            s, get_program(s, "default"), "pos", "bench"))[1]
        engine.dispose()
        port = 8799
        env = os.environ | {"JIFEN_DATABASE_URL": url}
        server = subprocess.Popen([sys.executable, "-c", "from jifen.cli import main; main()", "serve", "--port",
                                   str(port), "--no-jobs"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            script = Path(tmp) / "events.lua"
            script.write_text(LUA)
            at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            base = wrk(f"http://127.0.0.1:{port}/healthz", args.seconds, args.connections)
            rows = [("GET /healthz (baseline)", base, 1)]
            for path, batch in (("/v1/events", 0), ("/v1/events/batch", 100)):
                wenv = os.environ | {"KEY": key, "TAG": f"b{batch}", "AT": at, "BATCH": str(batch)}
                rows.append((f"POST {path}" + (f" ({batch} events)" if batch else ""),
                             wrk(f"http://127.0.0.1:{port}{path}", args.seconds, args.connections, script, wenv),
                             batch or 1))
        finally:
            server.terminate()
            server.wait()
    print(f"| request | requests/s | events/s | p50 ms | p99 ms | non-2xx | ({args.connections} connections, "
          f"{args.seconds} s) |")
    print("|---|---|---|---|---|---|---|")
    for name, r, per in rows:
        print(f"| {name} | {r['rps']:,.0f} | {r['rps'] * per:,.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['errors']} | |")


if __name__ == "__main__":
    main()
