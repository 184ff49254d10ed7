"""Flash sale over HTTP on PostgreSQL: many concurrent POST /v1/redemptions for one reward of limited stock,
then the database checked (orders, stock, holds, the ledger), beside pgbench on the same server in the run.

    .venv/bin/python bench/flash_sale.py [--attempts 10000] [--clients 500] [--stock 1000] [--members 2000]
        [--window MS] [--profile out.txt] [--pg-url URL] [--no-report]

A scratch PostgreSQL database with seed 001's programme, `members` members with enough points for all their
attempts and one physical reward (100 points, `stock` units), served by one `jifen serve` process (one
Uvicorn worker, as bench/http_events.py starts it). Then `attempts` redemptions, each with its own
Idempotency-Key and the API key's Bearer auth, from `clients` concurrent keep-alive connections of one
asyncio process (bench/httpload.py); each member's attempts go out on different connections at about the
same time. --window sets JIFEN_GROUP_COMMIT_MS (the server's default otherwise). --profile: py-spy samples
the server during the sale and the hottest frames are written to that file.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from http_events import server_process  # noqa: E402 - the same server as the other HTTP benches
from httpload import Call, percentile, run, run_clients  # noqa: E402
from ledger_ops import pgbench, scratch_databases  # noqa: E402 - the same PostgreSQL baseline as the ledger bench
from report import replace_section  # noqa: E402

PRICE = 100
ADDRESS = {"name": "王小明", "phone": "13800001111", "line": "上海市浦東新區世紀大道100號"}


def prepare(url: str, members: int, stock: int, points: int) -> str:
    """Programme, funded members, the flash reward; a fresh API key."""
    import datetime as dt

    from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
    from jifen.ledger import operations as ops
    from jifen.ledger.bulk import AwardItem, award_many
    from jifen.ledger.engine import lock_members
    from jifen.mall.models import Reward
    from jifen.members.service import create_member
    from jifen.programs.config import load_example
    from jifen.programs.service import apply_config, get_program, get_wallet
    from jifen.security.service import create_api_key
    from jifen.setup import init_database

    init_database(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    run_in_transaction(factory, lambda s: apply_config(s, load_example("seed001"), now=utcnow() - dt.timedelta(days=1),
                                                       actor="bench"))

    def setup(s):
        program = get_program(s, "default")
        people = [create_member(s, program, f"F{i}") for i in range(members)]
        sc = ops.Scope(s, program, get_wallet(s, program, None), utcnow(), actor="bench")
        lock_members(s, [p.id for p in people])
        award_many(sc, [AwardItem(p, points, sc.now) for p in people])
        s.add(Reward(program_id=program.id, code="flash", name="秒殺 聯名款", kind="physical", category="實物",
                     points=PRICE, stock=stock, stock_total=stock, sold=0, active=True, created_at=utcnow()))
        return create_api_key(s, program, "pos", "bench")[1]

    key = run_in_transaction(factory, setup)
    engine.dispose()
    return key


def calls(key: str, attempts: int, clients: int, members: int, tag: str) -> list[list[Call]]:
    """Attempt i is member (i // 5) % members's: five neighbours, so each member's attempts leave at about the
    same time on five different connections (client i % clients)."""
    per_client: list[list[Call]] = [[] for _ in range(clients)]
    for i in range(attempts):
        body = {"member_id": f"F{(i // 5) % members}", "reward": "flash", "quantity": 1, "address": ADDRESS}
        per_client[i % clients].append(Call("POST", "/v1/redemptions", {
            "Authorization": f"Bearer {key}", "Idempotency-Key": f"{tag}-{i}"}, body))
    return per_client


def check(url: str, points: int, created: list[int]) -> dict:
    """What the database says after the sale."""
    from sqlalchemy import text

    from jifen.db import make_engine, make_sessionmaker
    from jifen.ledger.verify import verify

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        one = lambda sql: s.execute(text(sql)).one()  # noqa: E731
        stock, sold, total = one("SELECT stock, sold, stock_total FROM rewards WHERE code = 'flash'")
        orders, order_points = one("SELECT count(*), coalesce(sum(points), 0) FROM redemptions")
        open_holds, held_points = one("SELECT count(*), coalesce(sum(points), 0) FROM holds WHERE status = 'open'")
        (held_balance,) = one("SELECT coalesce(sum(balance), 0) FROM accounts WHERE kind = 'held'")
        # A member's points taken twice for one order: more held (or less available) than their orders took.
        (doubled,) = one(f"""
            SELECT count(*) FROM members m
            LEFT JOIN (SELECT member_pk, count(*) n, sum(points) p FROM redemptions GROUP BY member_pk) r
                   ON r.member_pk = m.id
            LEFT JOIN (SELECT member_pk, count(*) n, sum(points) p FROM holds GROUP BY member_pk) h
                   ON h.member_pk = m.id
            JOIN accounts a ON a.member_pk = m.id AND a.kind = 'available'
            WHERE coalesce(h.n, 0) <> coalesce(r.n, 0) OR coalesce(h.p, 0) <> coalesce(r.p, 0)
               OR a.balance <> {points} - coalesce(r.p, 0)""")
        ids = {row[0] for row in s.execute(text("SELECT id FROM redemptions"))}
        problems = verify(s)
    engine.dispose()
    return {"orders": orders, "stock": stock, "sold": sold, "total": total,
            "oversold": max(0, -stock) + max(0, orders - total), "stock_adds_up": stock + sold == total,
            "holds_match": open_holds == orders and held_points == order_points == held_balance,
            "double_deducted": doubled, "acknowledged_missing": len(set(created) - ids),
            "acknowledged_twice": len(created) - len(set(created)), "verify_problems": len(problems)}


def profile(pid: int, seconds: int, out: Path) -> subprocess.Popen:
    """py-spy sampling the server (its threads too) for `seconds`, as collapsed stacks."""
    spy = Path(sys.executable).with_name("py-spy")  # (in the venv, else on PATH)
    # --idle: a thread waiting on PostgreSQL is sampled too (psycopg waits in a poll, which py-spy calls idle)
    return subprocess.Popen([str(spy) if spy.exists() else shutil.which("py-spy") or "py-spy", "record",
                             "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--format", "raw",
                             "--output", str(out), "--nonblocking", "--idle"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_IDLE = re.compile(r"(^|\.)(select|wait|get|_worker) \((selectors|threading|queue|concurrent)")


def _idle(frames: list[str]) -> bool:
    """A thread waiting for work: the event loop's select (under uvloop, C: `Runner.run` is the last frame), an
    idle pool thread, a group-commit worker waiting for requests (its queue's get is C too). Not a wait on
    PostgreSQL, which is counted."""
    return any(_IDLE.search(f) for f in frames[-3:]) or frames[-1].startswith(
        ("Runner.run", "GroupCommit._loop", "GroupCommit._gather"))


def hottest(raw: Path, top: int = 25) -> str:
    """The frames with the most samples under them (inclusive), from py-spy's collapsed stacks; idle waits
    (the worker waiting for requests, the event loop's select) are left out of the total."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if _idle(frames):
            continue
        total += int(count)
        for f in set(frames):
            inclusive[f] += int(count)
    lines = [f"busy samples: {total}"]
    lines += [f"{100 * n / max(total, 1):5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def table(row: dict) -> str:
    """A one-row markdown table."""
    return "\n".join("| " + " | ".join(map(str, cells)) + " |" for cells in (row, ["---"] * len(row), row.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--stock", type=int, default=1_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--window", help="JIFEN_GROUP_COMMIT_MS of the server (its default otherwise)")
    parser.add_argument("--profile", type=Path, help="write the server's hottest frames (py-spy) here")
    parser.add_argument("--pgbench-clients", type=int, default=32)
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()
    attempts_each = max(collections.Counter((i // 5) % args.members for i in range(args.attempts)).values())  # (calls)
    points = PRICE * attempts_each  # enough for every attempt: a refusal is for stock, not points
    env = {"JIFEN_GROUP_COMMIT_MS": args.window} if args.window else {}
    with tempfile.TemporaryDirectory() as tmp, scratch_databases(args.pg_url) as (url, bench_db):
        # The seeding and the server share one data key (the order addresses are encrypted at rest).
        os.environ["JIFEN_DATA_KEY_FILE"] = str(Path(tmp) / "data.key")
        key = prepare(url, args.members, args.stock, points)
        per_client = calls(key, args.attempts, args.clients, args.members, "flash")
        with server_process(url, **env) as (base, server):
            spy = profile(server.pid, 600, Path(tmp) / "raw.txt") if args.profile else None
            answers, wall = run(lambda: run_clients(base, per_client))
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes what it sampled and stops
                spy.wait()
                args.profile.write_text(hottest(Path(tmp) / "raw.txt") + "\n")
                args.profile.with_suffix(".raw").write_text((Path(tmp) / "raw.txt").read_text())
        created = [a.json()["id"] for _, a in answers if a.status == 201]
        result = check(url, points, created)
        tps = pgbench(bench_db, args.pgbench_clients, args.pgbench_seconds, "tpcb-like")
    codes = collections.Counter(str(a.status) if a.status < 300 else f"{a.status} {(a.json() or {}).get('error', {}).get('code')}"
                                for _, a in answers)
    ms = [a.seconds * 1000 for _, a in answers]
    load = {"answers": ", ".join(f"{k}: {v:,}" for k, v in sorted(codes.items())), "wall s": f"{wall:.1f}",
            "requests/s": f"{len(answers) / wall:,.0f}",
            **{f"p{p} ms": f"{percentile(ms, p):.0f}" for p in (50, 95, 99)}, "max ms": f"{max(ms):.0f}",
            f"pgbench -b tpcb-like, {args.pgbench_clients} clients": f"{tps:,.0f} tps"}
    db = {"orders": f"{result['orders']:,}", "stock left": result["stock"], "sold": result["sold"],
          "oversold": result["oversold"], "stock + sold = total": result["stock_adds_up"],
          "double-deducted members": result["double_deducted"],
          "holds = orders = held balance": result["holds_match"],
          "201s without an order": result["acknowledged_missing"], "`verify` problems": result["verify_problems"]}
    md = f"""{args.attempts:,} `POST /v1/redemptions` for one reward with {args.stock:,} units from {args.clients} concurrent
keep-alive connections (one asyncio client process, bench/httpload.py), {args.members:,} members each sending
{attempts_each} at about the same time; one `jifen serve` process, JIFEN_GROUP_COMMIT_MS = {args.window or "server default"}.

{table(load)}

{table(db)}
"""
    print(md)
    if args.profile:
        print(args.profile.read_text())
    if not args.no_report:
        replace_section("Flash sale, PostgreSQL", md, pg_url=args.pg_url)


if __name__ == "__main__":
    main()
