"""Event intake and rule evaluation speed, each figure printed beside a baseline from the same run.

Rule evaluation: seed 001's conditions through the engine (a CEL context per event, then each rule's
compiled program), against the same conditions written as plain Python functions (the floor of what
any evaluator could do in-process). Intake: purchase events from the members' phones through `ingest`
(store, idempotency, risk scoring and device sightings, rules, caps, ledger award, tier check), one per
transaction and in batches, then again once the risk anomaly model is trained on them, against the
database alone (raw sqlite3 transactions; `pgbench -N` on PostgreSQL).

    .venv/bin/python bench/events.py [--events 2000] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.events.schemas import EventIn
from jifen.flows.intake import ingest
from jifen.members.service import NewMember, create_members
from jifen.programs.config import load_example
from jifen.programs.service import apply_config, get_program
from jifen.rules.engine import Counters, EventFacts, MemberFacts, fire
from jifen.setup import init_database

sys.path.insert(0, str(Path(__file__).parent))
from ledger_ops import pgbench, scratch_databases, sqlite_baseline  # noqa: E402 - the same baselines as the ledger bench

MEMBERS = 200
TZ = ZoneInfo("Asia/Shanghai")


def bench_conditions(n: int) -> tuple[float, float]:
    """(events/s through the engine's `fire`, events/s for the same conditions in plain Python)."""
    doc = load_example("seed001").rules
    rng = random.Random(1)
    now = utcnow()
    events = [EventFacts(type=rng.choice(["purchase", "check_in"]), occurred_at=now,
                         amount=Decimal(rng.randint(1, 50000)) / 100,
                         lines=[{"category": "美妝", "amount": Decimal(10)}]) for _ in range(n)]
    who = MemberFacts(pk=1, member_id="M1", tier="silver", tier_multiplier=Decimal("1.1"), joined_at=now)
    counters = Counters(count=lambda t, p: 1, amount=lambda t, p: 0.0, streak=lambda t: 7, days_since=lambda t: 1)
    start = time.perf_counter()
    fired = sum(len(fire(doc, ev, who, counters, TZ)) for ev in events)
    engine = n / (time.perf_counter() - start)
    plain = [("purchase", lambda e: True), ("purchase", lambda e: e.amount > 100), ("purchase", lambda e: True),
             ("check_in", lambda e: counters.count("check_in", "day") == 1),
             ("check_in", lambda e: counters.count("check_in", "day") == 1 and counters.streak("check_in") % 7 == 0),
             ("invite", lambda e: "invitee" in e.attributes)]
    start = time.perf_counter()
    fired_plain = sum(sum(1 for t, cond in plain if t == ev.type and cond(ev)) for ev in events)
    baseline = n / (time.perf_counter() - start)
    assert fired == fired_plain, (fired, fired_plain)
    return engine, baseline


def seed(url: str) -> None:
    init_database(url)
    engine = make_engine(url)

    def setup(s):
        apply_config(s, load_example("seed001"), now=utcnow() - dt.timedelta(days=1), actor="bench")
        program = get_program(s, "default")
        create_members(s, program, [NewMember(f"B{i}") for i in range(MEMBERS)])

    run_in_transaction(make_sessionmaker(engine), setup)
    engine.dispose()


def bench_intake(url: str, n: int, batch: int) -> float:
    """Purchase events per second, `batch` events per transaction."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    rng = random.Random(batch)
    tag = uuid.uuid4().hex[:8]
    # Over the last 30 days, as a day's intake would see them: a member's last hour holds a few events, not
    # the whole benchmark (which would make every risk window read thousands of rows).
    now, who = utcnow(), [rng.randrange(MEMBERS) for _ in range(n)]
    events = [EventIn(event_id=f"{tag}-{i}", member_id=f"B{m}", type="purchase",
                      occurred_at=now - dt.timedelta(seconds=rng.uniform(60, 30 * 86400)),
                      amount=Decimal(rng.randint(100, 40000)) / 100,
                      order_id=f"{tag}-{i}", channel="app", attributes={"device_id": f"phone-{m}"})
              for i, m in enumerate(who)]
    start = time.perf_counter()
    for i in range(0, n, batch):
        chunk = events[i:i + batch]
        run_in_transaction(factory, lambda s, c=chunk: ingest(s, get_program(s, "default"), c, now=utcnow(),
                                                              strict=False))
    rate = n / (time.perf_counter() - start)
    engine.dispose()
    return rate


def train_model(url: str) -> int:
    """The risk anomaly model trained on what the intake benchmark stored; its sample count."""
    from jifen.risk import anomaly

    engine = make_engine(url)
    stored = run_in_transaction(make_sessionmaker(engine), lambda s: anomaly.train(s, get_program(s, "default"), utcnow()))
    engine.dispose()
    return stored.n_samples


def drop_models(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM risk_models"))
    engine.dispose()


def intake_rows(where: str, url: str, n: int, baseline: str) -> list[tuple]:
    """Without the anomaly model, with it, and without it again on the same (grown) data: the database
    grows with every run, so the model's cost is the difference between the last two rows of a batch size."""
    def row(batch: int, what: str = "") -> tuple:
        return (where, f"purchase events, {batch} per transaction{what}", f"{bench_intake(url, n, batch):,.0f} events/s",
                baseline)

    rows = [row(batch) for batch in (1, 100, 1000)]
    samples = train_model(url)
    rows += [row(batch, f", anomaly model ({samples:,} samples)") for batch in (1, 100)]
    drop_models(url)
    return rows + [row(batch, ", no model again (same data)") for batch in (1, 100)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    rows = []
    engine_rate, plain_rate = bench_conditions(20_000)
    rows.append(("in-process", "seed 001 conditions (CEL)", f"{engine_rate:,.0f} events/s",
                 f"same conditions as Python functions: {plain_rate:,.0f} events/s"))

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seed(url)
        base = sqlite_baseline(Path(tmp) / "baseline.db", 2000)
        rows += intake_rows("SQLite", url, args.events, f"raw sqlite3 tx: {base:,.0f} tx/s")

    with scratch_databases(args.pg_url) as (url, bench_db):
        seed(url)
        tps = pgbench(bench_db, 1, 10)
        rows += intake_rows("PostgreSQL", url, args.events, f"pgbench -N -c 1: {tps:,.0f} tps")

    print("| where | what | rate | baseline (same run) |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
