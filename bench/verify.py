"""`jifen ledger verify` over a large hash-chained ledger, beside sha256 over the same bytes in one loop.

    .venv/bin/python bench/verify.py [--entries 1000000] [--processes 2] [--pg-url URL] [--no-report]

The ledger is written straight into a scratch PostgreSQL database with COPY (the ledger's own write path
would take hours for millions of entries): members making purchases (an award: a new lot) and spending
from their latest lot, each entry sealed with the chain's own hash (jifen.ledger.chain). Then it times:
the chain check alone and --processes spans at once (on PostgreSQL, threads with a connection each: the
server recomputes the hashes), the balance and lot checks (SQL aggregates), and an
incremental check after appending 1 % more entries. The baseline is hashlib.sha256 over the very bodies
the chain hashes (entry_body), in one Python loop: what hashing alone costs, without reading anything.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).parent))
from jifen.db import make_engine, make_read_sessionmaker, make_sessionmaker, run_in_transaction, utcnow  # noqa: E402
from jifen.ledger.chain import FIELDS, GENESIS, entry_body, fields_hash  # noqa: E402
from jifen.ledger.models import AVAILABLE, ISSUANCE, REDEMPTION, Account  # noqa: E402
from jifen.ledger.verify import check_balances, check_chain, check_lots, save_checkpoints  # noqa: E402
from jifen.members.service import create_member  # noqa: E402
from jifen.programs.service import get_program, get_wallet  # noqa: E402
from jifen.setup import init_database  # noqa: E402
from ledger_ops import scratch_databases  # noqa: E402 - the same scratch databases as the ledger bench
from report import replace_section  # noqa: E402

MEMBERS = 2000
SAMPLE = 1_000_000  # bodies kept for the baseline (the rate, not the total, is compared)
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class Ledger:
    """What has been written so far, to continue the chain and keep balances and lots consistent."""

    program_id: int
    wallet_id: int
    issuance: int
    redemption: int
    available: dict[int, int]  # member pk → its available account
    seq: int = 0
    prev: str = GENESIS
    ids: dict[str, int] = field(default_factory=lambda: {"posting": 0, "move": 0, "lot": 0})
    lots: dict[int, list] = field(default_factory=dict)  # lot id → its row, available kept current
    latest: dict[int, int] = field(default_factory=dict)  # member pk → its latest lot
    balances: dict[int, int] = field(default_factory=dict)  # account id → balance
    bodies: list[bytes] = field(default_factory=list)


def setup(url: str) -> Ledger:
    init_database(url)
    engine = make_engine(url)

    def members(s):
        program = get_program(s, "default")
        wallet = get_wallet(s, program, None)
        pks = [create_member(s, program, f"V{i}").id for i in range(MEMBERS)]
        accounts = {(a.member_pk, a.kind): a.id for a in s.query(Account).filter(Account.wallet_id == wallet.id)}
        return Ledger(program.id, wallet.id, accounts[(None, ISSUANCE)], accounts[(None, REDEMPTION)],
                      {pk: accounts[(pk, AVAILABLE)] for pk in pks})

    ledger = run_in_transaction(make_sessionmaker(engine), members)
    engine.dispose()
    return ledger


def write(dsn: str, led: Ledger, n: int, seed: int) -> None:
    """Append n entries to the chain with COPY, then bring balances, lots and the chain head up to date."""
    rng = random.Random(seed)
    members = list(led.available)
    cols = {"journal_entries": (*FIELDS, "hash"), "postings": ("id", "entry_id", "account_id", "member_pk", "amount"),
            "lot_moves": ("id", "entry_id", "lot_id", "account_id", "amount")}
    # One COPY per connection at a time: a connection for each table, all committed at the end.
    with contextlib.ExitStack() as stack:
        copies = {}
        for t in cols:
            conn = stack.enter_context(psycopg.connect(dsn))
            conn.execute("SET session_replication_role = replica")  # no foreign-key triggers: rows are consistent
            copies[t] = stack.enter_context(conn.cursor().copy(f"COPY {t} ({', '.join(cols[t])}) FROM STDIN"))
        for _ in range(n):
            led.seq += 1
            eid, pk = led.seq, rng.choice(members)
            account = led.available[pk]
            lot = led.lots.get(led.latest.get(pk, 0))
            when = START + dt.timedelta(seconds=led.seq, microseconds=rng.randrange(1_000_000))
            if lot is not None and lot[9] >= 10 and rng.random() < 0.35:
                kind, points = "spend", rng.randint(1, lot[9])
                lot[9] -= points
                post = [(account, -points), (led.redemption, points)]
                move = [(lot[0], account, -points)]
            else:
                kind, points = "award", rng.randint(10, 2000)
                led.ids["lot"] += 1
                lot = [led.ids["lot"], pk, led.wallet_id, eid, None, points, when, None, None, points, 0, 0, 0]
                led.lots[lot[0]], led.latest[pk] = lot, lot[0]
                post = [(led.issuance, -points), (account, points)]
                move = [(lot[0], account, points)]
            fields = (eid, led.program_id, led.seq, kind, led.wallet_id, points, pk, None, None, None,
                      "purchase" if kind == "award" else None, "bench", f"order-{eid}", when, when, led.prev)
            led.prev = fields_hash(fields, post, move)
            if len(led.bodies) < SAMPLE:
                led.bodies.append(entry_body(fields, post, move))
            copies["journal_entries"].write_row((*fields, led.prev))
            for acc, amount in post:
                led.ids["posting"] += 1
                led.balances[acc] = led.balances.get(acc, 0) + amount
                copies["postings"].write_row((led.ids["posting"], eid, acc, None if acc == led.issuance
                                              or acc == led.redemption else pk, amount))
            for lot_id, acc, amount in move:
                led.ids["move"] += 1
                copies["lot_moves"].write_row((led.ids["move"], eid, lot_id, acc, amount))
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
        cur.execute("DELETE FROM lots")
        with cur.copy("COPY lots (id, member_pk, wallet_id, source_entry_id, origin_lot_id, points, earned_at, "
                      "expires_at, pending_until, available, pending, held, frozen) FROM STDIN") as copy:
            for lot in led.lots.values():
                copy.write_row(lot)
        cur.execute("CREATE TEMP TABLE bal (id bigint, balance bigint)")
        with cur.copy("COPY bal FROM STDIN") as copy:
            for row in led.balances.items():
                copy.write_row(row)
        cur.execute("UPDATE accounts a SET balance = bal.balance FROM bal WHERE bal.id = a.id")
        cur.execute("UPDATE chain_heads SET seq = %s, hash = %s WHERE program_id = %s",
                    (led.seq, led.prev, led.program_id))
        for t in ("journal_entries", "postings", "lot_moves", "lots"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # as a database that has been running a while would be


def timed(url: str, **kw) -> tuple[int, float]:
    """(entries re-hashed, seconds) for the chain check, through a read-only session as the CLI has."""
    engine = make_engine(url)
    with make_read_sessionmaker(engine)() as s:
        start = time.perf_counter()
        report = check_chain(s, **kw)
        elapsed = time.perf_counter() - start
    if not report.problems:
        run_in_transaction(make_sessionmaker(engine), lambda s: save_checkpoints(s, report.ends, utcnow()))
    engine.dispose()
    assert report.problems == [], report.problems[:3]
    return report.checked, elapsed


def aggregates(url: str) -> float:
    engine = make_engine(url)
    with make_read_sessionmaker(engine)() as s:
        start = time.perf_counter()
        problems = check_balances(s) + check_lots(s)
        elapsed = time.perf_counter() - start
    engine.dispose()
    assert problems == [], problems[:3]
    return elapsed


def baseline(bodies: list[bytes]) -> float:
    start = time.perf_counter()
    for body in bodies:
        hashlib.sha256(body).hexdigest()
    return len(bodies) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()
    with scratch_databases(args.pg_url) as (url, _):
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        led = setup(url)
        start = time.perf_counter()
        write(dsn, led, args.entries, seed=1)
        print(f"wrote {args.entries:,} entries in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        base, sampled = baseline(led.bodies), len(led.bodies)
        rows = []
        for processes in sorted({1, args.processes}):
            n, secs = timed(url, processes=processes)
            rows.append((f"chain, full, {processes} span{'s' if processes > 1 else ''} at once", n, secs))
        secs = aggregates(url)
        rows.append(("balances and lots (SQL aggregates)", args.entries, secs))
        more = max(1, args.entries // 100)
        write(dsn, led, more, seed=2)
        n, secs = timed(url, processes=args.processes, since_checkpoint=True)
        rows.append((f"chain, since checkpoint (+{more:,}), {args.processes} spans at once", n, secs))
    lines = [f"`python bench/verify.py --entries {args.entries} --processes {args.processes}`. A hash-chained ledger "
             "written straight into a scratch PostgreSQL database (awards and spends of 2,000 members), then "
             "`ledger.verify`'s checks timed. Baseline, same run: `hashlib.sha256` over the very bodies the chain "
             "hashes, in one Python loop (hashing alone, nothing read). The goal (issue 14) is ≥ 200,000 entries/s "
             "over 10,000,000 entries.", "",
             f"| check | entries | seconds | entries/s | baseline: sha256 of the same bodies, 1 loop ({sampled:,} "
             "bodies) | ratio |", "|---|---|---|---|---|---|"]
    lines += [f"| {what} | {n:,} | {secs:.1f} | {n / secs:,.0f} | {base:,.0f}/s | {n / secs / base:.2f} |"
              for what, n, secs in rows]
    print("\n".join(lines))
    if not args.no_report:
        replace_section("Ledger verify, PostgreSQL", "\n".join(lines), pg_url=args.pg_url)


if __name__ == "__main__":
    main()
