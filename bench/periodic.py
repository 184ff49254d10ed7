"""The periodic jobs at scale: expiry of N members × 5 lots (`ledger.jobs.settle_due`) and the quarterly tier
evaluation of N members (`programs.tiers.evaluate`), each beside a bare UPDATE of the same rows measured in
the same run on the same database.

    python bench/periodic.py [--members N] [--batch B] [--pg-url URL] [--no-docs]

A scratch PostgreSQL database (created on the server of --pg-url and dropped after) with seed 001's programme
(tiers on rolling 12-month spend, 30 days' grace) and N members, written straight into the tables (INSERT …
SELECT generate_series on the server; the journal entries by COPY, their hashes computed here): each member has
one award entry of five lots, all past expiry; one purchase in the tier window (¥0–25,000, so members move
up, down, into and out of grace) and a tier drawn at random (some with grace running or ended). The fixture is a
whole ledger: postings, lot moves, balances and the hash chain agree (its chain is checkpointed as written, so
the verify after the job re-checks the chain from there: the job's entries, and every balance and lot in full).

Baselines: `CREATE TABLE … (LIKE lots INCLUDING ALL)` filled with the same lots (indexes included), then
`UPDATE … SET available = 0 WHERE available > 0 AND expires_at <= now` — the lot rows the job changes, with
none of its entries, postings, moves, balances, outbox or chain; the same for members and
`UPDATE … SET tier, tier_since, tier_grace_until` of every member. The jobs run in a fresh process each
(spawned, not forked) so the peak memory printed is theirs: ru_maxrss of that process, and what it was before
the job started (interpreter and imports).

Before a rate is reported: every lot expired, each member's expiry entry equals its five lots, the expiry
account holds every point, balances and lots agree (`ledger.verify`, chain from the checkpoint), and the tier
outcome counts add up to N with members' tier columns matching the summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.ledger.chain import FIELDS, fields_hash
from jifen.ledger.models import EXPIRY, ISSUANCE, MEMBER_KINDS
from jifen.programs.config import load_example
from jifen.programs.service import apply_config, get_program, get_wallet
from jifen.setup import init_database

sys.path.insert(0, str(Path(__file__).parent))
from ledger_ops import scratch_databases  # noqa: E402 - the same scratch databases as the ledger bench
from report import replace_section  # noqa: E402

LOTS = 5
ABOUT = ("A scratch PostgreSQL database with seed 001's programme and N members, each with one award of five lots "
         "all past expiry, one purchase in the tier window (¥0–25,000) and a random tier (some in grace), written "
         "straight into the tables as a whole ledger (hash chain checkpointed as written). Baselines, same run and "
         "database: a bare `UPDATE` of the same rows in a copy of the table with the same indexes (`LIKE … "
         "INCLUDING ALL`) — lots: `SET available = 0` of the overdue ones; members: the three tier columns of "
         "every member. Each job runs in a fresh spawned process: peak memory is that process's ru_maxrss (and, "
         "in brackets, what it was before the job began).")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def lot_points(n: int, j: int) -> int:
    """Points of member n's lot j (1–97); the SQL below computes the same."""
    return 1 + (n * LOTS + j) % 97


LOT_POINTS_SQL = "1 + ((n * 5 + j) %% 97)"  # (%% is psycopg's %)


def seed(url: str, n: int, now: dt.datetime) -> dict[str, Any]:
    """The programme through the services; members, accounts, lots, moves, postings, events straight in."""
    init_database(url)
    engine = make_engine(url)

    def setup(s):
        apply_config(s, load_example("seed001"), now=now - dt.timedelta(days=500), actor="bench")
        program = get_program(s, "default")
        wallet = get_wallet(s, program, None)
        return program.id, wallet.id

    program_id, wallet_id = run_in_transaction(make_sessionmaker(engine), setup)
    engine.dispose()
    earned, expires = now - dt.timedelta(days=400), now - dt.timedelta(days=1)
    with psycopg.connect(_dsn(url)) as conn:
        system = dict(conn.execute("SELECT kind, id FROM accounts WHERE wallet_id = %s AND member_pk IS NULL",
                                   [wallet_id]).fetchall())
        acc0 = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM accounts").fetchone()[0]
        lot0 = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM lots").fetchone()[0]
        entry0 = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM journal_entries").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM members").fetchone()[0] == 0
        p = {"n": n, "program": program_id, "wallet": wallet_id, "acc0": acc0, "lot0": lot0, "entry0": entry0,
             "earned": earned, "expires": expires, "now": now, "issuance": system[ISSUANCE]}
        steps = [
            ("members", "INSERT INTO members (id, program_id, member_id, attributes, joined_at, created_at, tier, "
             "tier_since, tier_grace_until) SELECT n, %(program)s, 'P' || n, '{}'::json, %(earned)s, %(earned)s, "
             "(ARRAY['normal', 'silver', 'gold', 'black_gold'])[1 + n %% 4], %(earned)s, "
             "CASE n %% 3 WHEN 0 THEN NULL WHEN 1 THEN %(now)s - interval '1 day' ELSE %(now)s + interval '9 days' END "
             "FROM generate_series(1, %(n)s) n"),
            ("accounts", "INSERT INTO accounts (id, wallet_id, member_pk, kind, balance) "
             "SELECT %(acc0)s + (n - 1) * 5 + k - 1, %(wallet)s, n, (%(kinds)s::text[])[k], "
             f"CASE k WHEN 1 THEN (SELECT sum({LOT_POINTS_SQL}) FROM generate_series(0, 4) j) ELSE 0 END "
             "FROM generate_series(1, %(n)s) n, generate_series(1, 5) k"),
            ("lots", "INSERT INTO lots (id, member_pk, wallet_id, source_entry_id, points, earned_at, expires_at, "
             "available, pending, held, frozen) SELECT %(lot0)s + (n - 1) * 5 + j, n, %(wallet)s, "
             f"%(entry0)s + n - 1, {LOT_POINTS_SQL}, %(earned)s, %(expires)s, {LOT_POINTS_SQL}, 0, 0, 0 "
             "FROM generate_series(1, %(n)s) n, generate_series(0, 4) j"),
            ("lot moves", "INSERT INTO lot_moves (entry_id, lot_id, account_id, amount) "
             "SELECT source_entry_id, id, %(acc0)s + (member_pk - 1) * 5, available FROM lots ORDER BY id"),
            ("postings", "INSERT INTO postings (entry_id, account_id, member_pk, amount) "
             "SELECT source_entry_id, a, m, amount FROM (SELECT source_entry_id, member_pk, sum(available) AS total "
             "FROM lots GROUP BY source_entry_id, member_pk) t, LATERAL (VALUES (%(issuance)s::bigint, NULL::bigint, "
             "-t.total), (%(acc0)s + (t.member_pk - 1) * 5, t.member_pk, t.total)) v(a, m, amount) "
             "ORDER BY source_entry_id"),
            ("events", "INSERT INTO events (program_id, event_id, request_hash, member_pk, type, channel, "
             "occurred_at, amount, order_id, data, points, result, refunded_amount, points_reversed, received_at) "
             "SELECT %(program)s, 'E' || n, '', n, 'purchase', 'app', %(now)s - interval '30 days', "
             "(n * 7919 %% 25000)::numeric, 'O' || n, '{}'::json, 0, '{}'::json, 0, 0, %(now)s "
             "FROM generate_series(1, %(n)s) n"),
        ]
        for name, sql in steps:
            if name == "lots":  # (the entries first: lots, moves and postings point at them)
                start = time.perf_counter()
                seq, prev = conn.execute("SELECT seq, hash FROM chain_heads WHERE program_id = %s",
                                         [program_id]).fetchone()
                total_issued = _entries(conn, p, seq, prev)
                print(f"  journal entries (hashed here, COPY): {time.perf_counter() - start:.1f} s", file=sys.stderr,
                      flush=True)
            start = time.perf_counter()
            conn.execute(sql, p | {"kinds": list(MEMBER_KINDS)})
            print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", [total_issued, system[ISSUANCE]])
        for table in ("members", "accounts", "lots", "journal_entries"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  vacuum analyze: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return p | {"issued": total_issued, "expiry": system[EXPIRY]}


def _entries(conn: psycopg.Connection, p: dict[str, Any], seq: int, prev: str) -> int:
    """One award entry per member (its five lots), hashed into the chain in id order; the chain head and a
    checkpoint at the last one (the fixture is proven whole by construction: verify re-checks from there)."""
    total_issued = 0
    acc = p["acc0"]
    with conn.cursor() as cur, cur.copy(
            f"COPY journal_entries ({', '.join(FIELDS)}, hash) FROM STDIN") as copy:
        for n in range(1, p["n"] + 1):
            points = [lot_points(n, j) for j in range(LOTS)]
            total = sum(points)
            total_issued += total
            entry_id, seq = p["entry0"] + n - 1, seq + 1
            available = acc + (n - 1) * 5
            fields = (entry_id, p["program"], seq, "award", p["wallet"], total, n, None, None, None, None, "bench",
                      None, p["earned"], p["earned"], prev)
            lots = p["lot0"] + (n - 1) * 5
            prev = fields_hash(fields, [(p["issuance"], -total), (available, total)],
                               [(lots + j, available, points[j]) for j in range(LOTS)])
            copy.write_row((*fields, prev))
            if n % 200_000 == 0:
                print(f"    {n:,} entries", file=sys.stderr, flush=True)
    conn.execute("UPDATE chain_heads SET seq = %s, hash = %s WHERE program_id = %s", [seq, prev, p["program"]])
    conn.execute("INSERT INTO chain_checkpoints (program_id, seq, hash, verified_at) VALUES (%s, %s, %s, %s)",
                 [p["program"], seq, prev, p["now"]])
    return total_issued


def bare_update(url: str, table: str, set_where: str, params: list[Any]) -> tuple[int, float]:
    """(rows, seconds) of one UPDATE on a same-indexed copy of the table (the copy made before the clock starts)."""
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
        conn.execute(f"INSERT INTO bench_{table} SELECT * FROM {table}")
        conn.execute(f"VACUUM ANALYZE bench_{table}")
        conn.execute("CHECKPOINT")
        start = time.perf_counter()
        rows = conn.execute(f"UPDATE bench_{table} SET {set_where}", params).rowcount
        took = time.perf_counter() - start
        conn.execute(f"DROP TABLE bench_{table}")
    return rows, took


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_job(job: str, url: str, now: dt.datetime, batch: int, out: Any) -> None:
    """In a spawned process: the job alone, timed, with the process's peak memory before and after."""
    from jifen.ledger.jobs import settle_due
    from jifen.programs import tiers

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    before = _maxrss_mib()
    start = time.perf_counter()
    if job == "expiry":
        report = settle_due(factory, now, batch=batch)
        result: Any = {"entries": report.entries, "members": report.members, "batches": report.batches}
    else:
        result = run_in_transaction(factory, lambda s: tiers.evaluate(s, get_program(s, "default"), now,
                                                                      batch=batch))
    took = time.perf_counter() - start
    engine.dispose()
    out.send((result, took, before, _maxrss_mib()))


def run_job(job: str, url: str, now: dt.datetime, batch: int) -> tuple[Any, float, float, float]:
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    ctx = multiprocessing.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_run_job, args=(job, url, now, batch, theirs))
    proc.start()
    result = mine.recv()
    proc.join()
    assert proc.exitcode == 0, f"{job} failed"
    return result


def check_expiry(url: str, p: dict[str, Any], report: dict[str, int]) -> float:
    """Every lot expired, one expire entry per member equal to its lots, the expiry account holds every point,
    the ledger whole (`verify` with the chain from the fixture's checkpoint). Seconds the verify took."""
    from jifen.ledger.verify import verify

    n = p["n"]
    assert report["entries"] == n and report["members"] == n, report
    with psycopg.connect(_dsn(url)) as conn:
        left = conn.execute("SELECT count(*) FROM lots WHERE available > 0 OR pending > 0").fetchone()[0]
        assert left == 0, f"{left} lots not expired"
        wrong = conn.execute(
            "SELECT count(*) FROM journal_entries e JOIN (SELECT member_pk, sum(points) AS pts FROM lots "
            "GROUP BY member_pk) l ON l.member_pk = e.member_pk WHERE e.type = 'expire' AND e.points <> l.pts"
        ).fetchone()[0]
        expires = conn.execute("SELECT count(DISTINCT member_pk), count(*) FROM journal_entries "
                               "WHERE type = 'expire'").fetchone()
        assert wrong == 0 and tuple(expires) == (n, n), (wrong, expires)
        expired = conn.execute("SELECT balance FROM accounts WHERE id = %s", [p["expiry"]]).fetchone()[0]
        members = conn.execute("SELECT coalesce(sum(balance), 0) FROM accounts WHERE member_pk IS NOT NULL"
                               ).fetchone()[0]
        assert expired == p["issued"] and members == 0, (expired, p["issued"], members)
        messages = conn.execute("SELECT count(*) FROM outbox_messages WHERE topic = 'points.expired'").fetchone()[0]
        assert messages == n, messages
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        start = time.perf_counter()
        problems = verify(s, since_checkpoint=True)
        took = time.perf_counter() - start
    engine.dispose()
    assert problems == [], [str(x) for x in problems[:3]]
    return took


def check_tiers(url: str, n: int, summary: dict[str, int], now: dt.datetime) -> None:
    """The outcomes add up to N; as many members changed tier (and were announced) as the summary says."""
    assert summary["members"] == n and sum(v for k, v in summary.items() if k != "members") == n, summary
    with psycopg.connect(_dsn(url)) as conn:
        moved = conn.execute("SELECT count(*) FROM members WHERE tier_since = %s", [now]).fetchone()[0]
        announced = conn.execute("SELECT count(*) FROM outbox_messages WHERE topic = 'tier.changed'").fetchone()[0]
        graced = conn.execute("SELECT count(*) FROM members WHERE tier_grace_until = %s",
                              [now + dt.timedelta(days=30)]).fetchone()[0]
    assert moved == announced == summary["upgraded"] + summary["downgraded"], (moved, announced, summary)
    assert graced == summary["grace_started"], (graced, summary)


def ratio(figure: float, baseline: float) -> str:
    return f"{figure / baseline:.1f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="members per transaction (both jobs)")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-docs", action="store_true", help="print the table only, leave docs/benchmarks.md alone")
    args = parser.parse_args()
    n, now = args.members, utcnow()
    load_before = os.getloadavg()[0]

    with scratch_databases(args.pg_url) as (url, _unused):
        print(f"seeding {n:,} members × {LOTS} lots …", file=sys.stderr, flush=True)
        start = time.perf_counter()
        p = seed(url, n, now)
        seeding = time.perf_counter() - start

        print("baseline: bare UPDATE of the overdue lots …", file=sys.stderr, flush=True)
        lot_rows, lot_base = bare_update(url, "lots", "available = 0 WHERE available > 0 AND expires_at <= %s", [now])
        assert lot_rows == n * LOTS, lot_rows
        print(f"  {lot_rows:,} rows in {lot_base:.1f} s; settle_due …", file=sys.stderr, flush=True)
        report, expiry_s, expiry_rss0, expiry_rss = run_job("expiry", url, now, args.batch)
        print(f"  {expiry_s:.1f} s; checking …", file=sys.stderr, flush=True)
        verifying = check_expiry(url, p, report)

        print("baseline: bare UPDATE of every member's tier columns …", file=sys.stderr, flush=True)
        member_rows, tier_base = bare_update(
            url, "members", "tier = 'gold', tier_since = %s, tier_grace_until = NULL", [now])
        assert member_rows == n, member_rows
        print(f"  {member_rows:,} rows in {tier_base:.1f} s; tiers.evaluate …", file=sys.stderr, flush=True)
        summary, tier_s, tier_rss0, tier_rss = run_job("tiers", url, now, args.batch)
        check_tiers(url, n, summary, now)

    table = "\n".join([
        "| what | figure | baseline | ratio | peak memory |",
        "|---|---|---|---|---|",
        f"| expiry: `settle_due` of {n:,} members × {LOTS} lots (batch {args.batch:,}) | {expiry_s:.1f} s "
        f"({n / expiry_s:,.0f} members/s, {n * LOTS / expiry_s:,.0f} lots/s) | bare `UPDATE` of the same "
        f"{lot_rows:,} lot rows: {lot_base:.1f} s | {ratio(expiry_s, lot_base)} | {expiry_rss:,.0f} MiB "
        f"({expiry_rss0:,.0f} before) |",
        f"| tier evaluation: `tiers.evaluate` of {n:,} members (batch {args.batch:,}) | {tier_s:.1f} s "
        f"({n / tier_s:,.0f} members/s) | bare `UPDATE` of the {member_rows:,} members' tier columns: "
        f"{tier_base:.1f} s | {ratio(tier_s, tier_base)} | {tier_rss:,.0f} MiB ({tier_rss0:,.0f} before) |",
    ])
    outcome = ", ".join(f"{k} {v:,}" for k, v in summary.items() if k != "members")
    checked = (f"checked before reporting: every lot expired, one expire entry per member equal to its lots, the "
               f"expiry account = the {p['issued']:,} points issued, member balances 0, one points.expired message "
               f"per member, `ledger.verify` clean ({verifying:.1f} s; chain from the fixture's checkpoint, balances "
               f"and lots in full); tiers: {outcome}, as many tier.changed messages and changed members as moves. "
               f"Seeding took {seeding:.0f} s. Load average (1 min) {load_before:.1f} at the start, "
               f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores: figures from a busier machine "
               f"are not comparable with a quiet one's, but the job and its baseline share the load.")
    print(table)
    print(checked)
    if not args.no_docs:
        command = f"python bench/periodic.py --members {n} --batch {args.batch}"
        replace_section("Periodic jobs: expiry and tier evaluation, PostgreSQL",
                        f"`{command}`. {ABOUT}\n\n{table}\n\n{checked}\n", pg_url=args.pg_url)


if __name__ == "__main__":
    main()
