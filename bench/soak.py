"""Soak: mixed load for many minutes against `jifen serve --workers 2` on a scratch PostgreSQL database, watching
the server's memory and latency for drift, then checking that nothing acknowledged was lost or doubled.

    python bench/soak.py [--minutes 10] [--members 3000] [--pg-url URL] [--no-docs]

The programme, funded members F0… and a reward of unlimited stock are bench/flash_sale.py's; the server is
bench/http_events.py's (with two workers); the clients are bench/httpload.py's keep-alive connections, at once:
single purchases, batches of 20 purchases, balance reads, redemptions and check-ins (each member once). Every
10 s a window is sampled: the resident memory of the server's parent and workers (/proc VmRSS), p50 / p99 of
the window's answers, requests per second, and errors (any status a healthy server would not give: 5xx, or a
4xx where the call is valid). At the end every event acknowledged (200/201, or `processed`/`replayed` in a
batch) must have exactly one journal entry, every acknowledged redemption one row, and `ledger.verify` be
clean. The table goes to stdout; a plot to docs/reliability-soak.svg and the figures to docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import itertools
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cluster import children  # noqa: E402 - the same process tree as the cluster bench
from flash_sale import ADDRESS, PRICE, prepare  # noqa: E402 - the same funded members and reward
from http_events import server_process  # noqa: E402 - the same server, with two workers
from httpload import Answer, Call, percentile, run, run_clients  # noqa: E402
from ledger_ops import scratch_databases  # noqa: E402
from report import replace_section  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
WINDOW = 10.0  # seconds
BATCH = 20
# kind: (clients, seconds between one client's answer and its next call, the statuses a healthy server gives)
MIX = {"purchase": (12, 0.02, {200, 201}), "batch": (3, 0.2, {200}), "balance": (12, 0.02, {200}),
       "redeem": (4, 0.1, {201}), "check-in": (2, 0.3, {201})}


def purchase(key: str, tag: str, n: int, members: int) -> dict:
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat()
    return {"event_id": f"{tag}-{n}", "member_id": f"F{random.randrange(members)}", "type": "purchase",
            "amount": f"{random.randint(1, 400)}.{random.randint(0, 99):02d}", "occurred_at": at,
            "order_id": f"{tag}-{n}", "channel": "app"}


def calls(kind: str, key: str, tag: str, members: int, check_ins: Iterator[int]) -> Iterator[Call]:
    """One client's endless calls of a kind (check-ins: from the shared list of members not yet checked in)."""
    auth = {"Authorization": f"Bearer {key}"}
    for n in itertools.count():
        if kind == "purchase":
            yield Call("POST", "/v1/events", auth, purchase(key, tag, n, members))
        elif kind == "batch":
            yield Call("POST", "/v1/events/batch", auth,
                       {"events": [purchase(key, f"{tag}-{n}", j, members) for j in range(BATCH)]})
        elif kind == "balance":
            yield Call("GET", f"/v1/members/F{random.randrange(members)}/balance", auth)
        elif kind == "redeem":
            yield Call("POST", "/v1/redemptions", auth | {"Idempotency-Key": f"{tag}-{n}"},
                       {"member_id": f"F{random.randrange(members)}", "reward": "flash", "quantity": 1,
                        "address": ADDRESS})
        else:
            who = next(check_ins, None)
            if who is None:
                return
            yield Call("POST", f"/v1/members/F{who}/check-in", auth | {"Idempotency-Key": f"{tag}-{n}"}, {})


def rss_mib(pid: int) -> float:
    """Resident memory of one process (VmRSS), MiB; 0 once it is gone."""
    try:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


@dataclass
class Window:
    at: float  # seconds since the load began, at the window's end
    seconds: float  # the window's length (the last may be shorter)
    parent_mib: float
    workers_mib: list[float]
    requests: int
    p50: float
    p99: float
    errors: int

    @property
    def total_mib(self) -> float:
        return self.parent_mib + sum(self.workers_mib)


async def soak(base: str, key: str, server_pid: int, seconds: float, members: int
               ) -> tuple[list[Window], dict[str, list[tuple[Call, Answer]]]]:
    stop = asyncio.Event()
    answers: dict[str, list[tuple[Call, Answer]]] = {kind: [] for kind in MIX}
    check_ins = iter(random.sample(range(members), members))
    tag = f"soak{random.getrandbits(24):x}"
    runs = [asyncio.ensure_future(run_clients(base, [calls(kind, key, f"{tag}-{kind}{i}", members, check_ins)
                                                     for i in range(clients)], stop, pause, answers[kind]))
            for kind, (clients, pause, _) in MIX.items()]
    windows: list[Window] = []
    seen = dict.fromkeys(MIX, 0)
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        await asyncio.sleep(min(WINDOW, seconds - elapsed))
        at = time.monotonic() - began
        latencies, errors = [], 0
        for kind, got in answers.items():
            new, seen[kind] = got[seen[kind]:], len(got)
            latencies += [a.seconds for _, a in new]
            errors += sum(a.status not in MIX[kind][2] for _, a in new)
        windows.append(Window(at, at - (windows[-1].at if windows else 0), rss_mib(server_pid),
                              [rss_mib(p) for p in sorted(children(server_pid))], len(latencies),
                              percentile(latencies, 50), percentile(latencies, 99), errors))
        w = windows[-1]
        print(f"  {w.at:5.0f} s  {w.total_mib:6.1f} MiB  {w.requests / w.seconds:6.0f} req/s  p50 {w.p50 * 1000:5.1f} ms"
              f"  p99 {w.p99 * 1000:6.1f} ms  errors {w.errors}", file=sys.stderr, flush=True)
    stop.set()
    await asyncio.gather(*runs)
    return windows, answers


def acknowledged(answers: dict[str, list[tuple[Call, Answer]]]) -> tuple[list[str], list[int]]:
    """The event ids the server acknowledged, and the ids of the redemptions it created."""
    events = [c.body["event_id"] for c, a in answers["purchase"] if a.status in (200, 201)]
    for c, a in answers["batch"]:
        if a.status == 200:
            events += [r["event_id"] for r in a.json()["results"] if r["status"] in ("processed", "replayed")]
    return events, [a.json()["id"] for _, a in answers["redeem"] if a.status == 201]


def check(url: str, events: list[str], redemptions: list[int]) -> tuple[int, int, int, int]:
    """(events missing, events doubled, redemptions missing, ledger.verify problems)."""
    from sqlalchemy import func, select

    from jifen.db import make_engine, make_sessionmaker
    from jifen.ledger.models import JournalEntry
    from jifen.ledger.verify import verify
    from jifen.mall.models import Redemption

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        per = collections.Counter(dict(s.execute(select(JournalEntry.reference, func.count()).where(
            JournalEntry.reference.like("event:%")).group_by(JournalEntry.reference)).all()))
        stored = set(s.scalars(select(Redemption.id)))
        problems = verify(s)
    engine.dispose()
    wanted = {f"event:{e}" for e in events}
    return (sum(per[e] == 0 for e in wanted), sum(per[e] > 1 for e in wanted),
            len(set(redemptions) - stored), len(problems))


def svg(windows: list[Window], path: Path) -> None:
    """Two small line charts, one above the other: server memory (MiB) and p99 latency (ms) per window."""
    width, height, left, pad = 640, 170, 56, 24
    xs = [w.at / 60 for w in windows]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{2 * height + 20}" '
           'font-family="sans-serif" font-size="11">', '<rect width="100%" height="100%" fill="white"/>']
    for row, (title, ys, colour) in enumerate([("server RSS, parent + 2 workers (MiB)",
                                                [w.total_mib for w in windows], "#1f77b4"),
                                               ("p99 latency per 10 s window (ms)",
                                                [w.p99 * 1000 for w in windows], "#d62728")]):
        top = row * (height + 10) + pad
        plot_h, plot_w = height - 2 * pad, width - left - pad
        hi, span = max(ys) * 1.1 or 1, (max(xs) or 1)

        def point(x: float, y: float, top: int = top, plot_h: int = plot_h, plot_w: int = plot_w,
                  hi: float = hi, span: float = span) -> str:
            return f"{left + x / span * plot_w:.1f},{top + plot_h - y / hi * plot_h:.1f}"

        out += [f'<text x="{left}" y="{top - 8}" font-weight="bold">{title}</text>',
                f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
                f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>',
                f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{hi:.0f}</text>',
                f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
                f'<text x="{left + plot_w}" y="{top + plot_h + 14}" text-anchor="end">{span:.1f} min</text>',
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="'
                + " ".join(point(x, y) for x, y in zip(xs, ys, strict=True)) + '"/>']
    path.write_text("\n".join([*out, "</svg>"]) + "\n", encoding="utf-8")


def report(windows: list[Window], answers: dict[str, list[tuple[Call, Answer]]], figures: tuple[int, ...],
           events: int, redemptions: int, minutes: float, load: tuple[float, float]) -> str:
    first, last = windows[0], windows[-1]
    span = (last.at - first.at) / 60 or 1
    warm = next((w for w in windows if w.at >= 60), first)  # after the first minute: imports, caches, pools filled
    requests = sum(w.requests for w in windows)
    kinds = ", ".join(f"{k} {len(v):,}" for k, v in answers.items())
    missing, doubled, lost, problems = figures
    return "\n".join([
        "| what | figure |",
        "|---|---|",
        f"| load | {minutes:g} min, {sum(c for c, _, _ in MIX.values())} clients: {kinds} requests |",
        f"| server RSS (parent + 2 workers), first / last window | {first.total_mib:.0f} / {last.total_mib:.0f} MiB "
        f"({(last.total_mib - first.total_mib) / span:+.2f} MiB/min; from minute 1 on "
        f"{(last.total_mib - warm.total_mib) / ((last.at - warm.at) / 60 or 1):+.2f} MiB/min) |",
        f"| of which workers, first / last | {' + '.join(f'{m:.0f}' for m in first.workers_mib)} / "
        f"{' + '.join(f'{m:.0f}' for m in last.workers_mib)} MiB |",
        f"| p50 / p99, first window | {first.p50 * 1000:.1f} / {first.p99 * 1000:.1f} ms |",
        f"| p50 / p99, last window | {last.p50 * 1000:.1f} / {last.p99 * 1000:.1f} ms |",
        f"| p99, worst window | {max(w.p99 for w in windows) * 1000:.1f} ms |",
        f"| throughput, mean / lowest window | {requests / (last.at or 1):,.0f} / "
        f"{min(w.requests / w.seconds for w in windows):,.0f} requests/s |",
        f"| errors (5xx, or a 4xx for a valid call) | {sum(w.errors for w in windows)} |",
        f"| acknowledged: events / redemptions | {events:,} / {redemptions:,} |",
        f"| events missing / doubled, redemptions missing, `ledger.verify` problems | {missing} / {doubled}, "
        f"{lost}, {problems} |",
        f"| machine load average (1 min, 2 cores shared), start / end | {load[0]:.1f} / {load[1]:.1f} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    with scratch_databases(args.pg_url) as (url, _pgbench_db):
        print(f"seeding {args.members:,} funded members …", file=sys.stderr, flush=True)
        key = prepare(url, args.members, 10**9, 10**7)
        with server_process(url, workers=2) as (base, server):
            print(f"soak for {args.minutes:g} min …", file=sys.stderr, flush=True)
            load_start = os.getloadavg()[0]
            windows, answers = run(lambda: soak(base, key, server.pid, args.minutes * 60, args.members))
            load = (load_start, os.getloadavg()[0])
        events, redemptions = acknowledged(answers)
        figures = check(url, events, redemptions)
    table = report(windows, answers, figures, len(events), len(redemptions), args.minutes, load)
    print(table)
    if not args.no_docs:
        svg(windows, DOCS / "reliability-soak.svg")
        replace_section("Soak", f"`python bench/soak.py --minutes {args.minutes:g} --members {args.members}`: "
                        f"`jifen serve --workers 2` on a scratch database, redemptions of {PRICE} points. "
                        "Memory and p99 per 10 s window: ![soak](reliability-soak.svg)\n\n" + table + "\n",
                        pg_url=args.pg_url, path=DOCS / "reliability.md")
    if any(figures):
        sys.exit(f"FAILED: missing / doubled events, missing redemptions, verify problems: {figures}")


if __name__ == "__main__":
    main()
