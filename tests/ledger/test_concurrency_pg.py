"""PostgreSQL under contention: 50 threads spending, transferring, awarding and holding against the
same few members, with duplicate submissions of the same Idempotency-Key racing each other.
Afterwards: no negative balance, every successful operation applied exactly once, verify clean."""

from __future__ import annotations

import random
import threading
from collections import Counter

from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.errors import InsufficientPoints
from jifen.idempotency import idempotent
from jifen.ledger import jobs
from jifen.ledger import operations as ops
from jifen.ledger.models import Account, Hold, JournalEntry
from jifen.members.service import create_member
from jifen.programs.service import get_program, get_wallet
from tests.conftest import Ledger, m

THREADS, OPS_PER_THREAD, MEMBERS, START = 50, 44, 5, 2_000


def _plan(rng: random.Random) -> list[tuple]:
    """(key, op, args); about one in ten keys is submitted twice, from different threads."""
    plan = []
    for n in range(THREADS * OPS_PER_THREAD):
        a, b = rng.sample(range(MEMBERS), 2)
        kind = rng.choices(["spend", "transfer", "award", "hold"], weights=[4, 4, 2, 2])[0]
        plan.append((f"op-{n}", kind, (a, b, rng.randint(1, 400), rng.random() < 0.5)))
    plan += rng.sample(plan, len(plan) // 10)
    rng.shuffle(plan)
    return plan


def _work(sc, kind, args):
    a, b, points, capture = args
    if kind == "award":
        return {"entry": ops.award(sc, m(sc, f"C{a}"), points).id}
    if kind == "spend":
        return {"entry": ops.spend(sc, m(sc, f"C{a}"), points).id}
    if kind == "transfer":
        return {"entry": ops.transfer(sc, m(sc, f"C{a}"), m(sc, f"C{b}"), points).id}
    h = ops.hold(sc, m(sc, f"C{a}"), points)
    (ops.capture if capture else ops.release)(sc, h.id)
    return {"hold": h.id}


def test_fifty_threads_never_lose_or_double_points(pg_only_url):
    engine = make_engine(pg_only_url, pool_size=THREADS, max_overflow=10)
    factory = make_sessionmaker(engine)

    def setup(s):
        program = get_program(s, "default")
        sc = ops.Scope(s, program, get_wallet(s, program, None), utcnow(), "test")
        for i in range(MEMBERS):
            ops.award(sc, create_member(s, program, f"C{i}"), START)
        return program.id

    program_id = run_in_transaction(factory, setup)
    plan = _plan(random.Random(7))
    done: dict[str, tuple] = {}
    outcomes, errors = Counter(), []
    lock = threading.Lock()

    def worker(items):
        for key, kind, args in items:
            def tx(s):
                program = get_program(s, "default")
                sc = ops.Scope(s, program, get_wallet(s, program, None), utcnow(), "test")
                return idempotent(s, program_id, key, kind, list(args), lambda: _work(sc, kind, args))

            try:
                result, replayed = run_in_transaction(factory, tx)
                with lock:
                    outcomes["replayed" if replayed else "applied"] += 1
                    done[key] = (kind, args)
            except InsufficientPoints:
                with lock:
                    outcomes["refused"] += 1
            except Exception as exc:  # noqa: BLE001 — anything else fails the test below
                errors.append(repr(exc))

    chunks = [plan[i::THREADS] for i in range(THREADS)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert outcomes["applied"] == len(done) and outcomes["applied"] > 1000
    assert outcomes["replayed"] > 0

    expected = [START] * MEMBERS
    for kind, (a, b, points, capture) in done.values():
        if kind == "award":
            expected[a] += points
        elif kind in ("spend",) or (kind == "hold" and capture):
            expected[a] -= points
        elif kind == "transfer":
            expected[a] -= points
            expected[b] += points
    ledger = Ledger(factory)
    for i in range(MEMBERS):
        assert ledger.balances(f"C{i}") | {} == {"available": expected[i], "pending": 0, "held": 0, "frozen": 0,
                                                   "debt": 0}
    with factory() as s:
        assert s.scalars(select(Hold).where(Hold.status == "open")).all() == []
    assert ledger.verify() == []
    engine.dispose()


def test_concurrent_expiry_runs_expire_each_point_once(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    ledger = Ledger(factory)
    ledger.add_members(*[f"E{i}" for i in range(120)])

    def awards(s):
        program = get_program(s, "default")
        sc = ops.Scope(s, program, get_wallet(s, program, None), ledger.now, "test")
        for i in range(120):
            ops.award(sc, m(sc, f"E{i}"), 10, expires_at=ledger.now + (i % 2 + 1) * jobs.dt.timedelta(days=1))

    run_in_transaction(factory, awards)
    later = ledger.now + jobs.dt.timedelta(days=3)
    reports = []
    runners = [threading.Thread(target=lambda: reports.append(jobs.settle_due(factory, later, batch=10)))
               for _ in range(4)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert sum(r.entries for r in reports) == 120
    assert all(ledger.balances(f"E{i}")["available"] == 0 for i in range(0, 120, 7))
    assert ledger.verify() == []
    engine.dispose()


def test_a_dropped_connection_is_retried(pg_only_url):
    """Without pre-ping, a pooled connection killed by the server fails once and the retry succeeds."""
    engine = make_engine(pg_only_url, pool_size=1, max_overflow=0)
    factory = make_sessionmaker(engine)
    ledger = Ledger(factory)
    ledger.add_members("D")
    with factory() as s:
        s.execute(select(Hold.id)).all()  # leave one connection in the pool
    admin = make_engine(pg_only_url)
    with admin.begin() as conn:
        killed = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").scalar()
    assert killed >= 1
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "D"), 5))
    assert ledger.balances("D")["available"] == 5
    admin.dispose()
    engine.dispose()


def test_racing_duplicates_of_one_key_apply_once(pg_only_url):
    """Ten requests with the same Idempotency-Key at the same moment: one award, nine replays of it."""
    engine = make_engine(pg_only_url, pool_size=12)
    factory = make_sessionmaker(engine)
    ledger = Ledger(factory)
    ledger.add_members("K")
    program_id = run_in_transaction(factory, lambda s: get_program(s, "default").id)
    barrier, results = threading.Barrier(10), []

    def request():
        def tx(s):
            program = get_program(s, "default")
            sc = ops.Scope(s, program, get_wallet(s, program, None), utcnow(), "test")
            barrier.wait()
            return idempotent(s, program_id, "same-key", "award", ["K", 77],
                              lambda: {"entry": ops.award(sc, m(sc, "K"), 77).id})

        results.append(run_in_transaction(factory, tx))

    threads = [threading.Thread(target=request) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 9
    assert len({r["entry"] for r, _ in results}) == 1
    assert ledger.balances("K")["available"] == 77
    assert ledger.verify() == []
    engine.dispose()


def test_expiry_racing_with_spends_never_spends_an_expired_point(pg_only_url):
    """Spenders and expiry runners on the same members at the same moment: every point is either
    spent (only from lots still valid) or expired, never both, and the ledger stays whole."""
    engine = make_engine(pg_only_url, pool_size=30)
    factory = make_sessionmaker(engine)
    ledger = Ledger(factory)
    ids = [f"X{i}" for i in range(20)]
    ledger.add_members(*ids)
    day = jobs.dt.timedelta(days=1)

    def awards(s):
        program = get_program(s, "default")
        sc = ops.Scope(s, program, get_wallet(s, program, None), ledger.now, "test")
        for mid in ids:
            ops.award(sc, m(sc, mid), 100, expires_at=ledger.now + day)       # will be expired
            ops.award(sc, m(sc, mid), 30, expires_at=ledger.now + 30 * day)   # stays valid

    run_in_transaction(factory, awards)
    later = ledger.now + 2 * day
    refused, errors = Counter(), []

    def spend(s, mid):
        program = get_program(s, "default")
        sc = ops.Scope(s, program, get_wallet(s, program, None), later, "test")
        return ops.spend(sc, m(sc, mid), 20)

    def spender(mid):
        for _ in range(3):
            try:
                run_in_transaction(factory, lambda s: spend(s, mid))
            except InsufficientPoints:
                refused[mid] += 1
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

    threads = [threading.Thread(target=spender, args=(mid,)) for mid in ids]
    threads += [threading.Thread(target=lambda: jobs.settle_due(factory, later, batch=3)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for mid in ids:
        b = ledger.balances(mid)
        # 30 valid points: one spend of 20 succeeds, the next two are refused; the 100 always expire.
        assert (b["available"], refused[mid]) == (10, 2)
    with factory() as s:
        expired = s.scalar(select(func.sum(Account.balance)).where(Account.kind == "expiry"))
    assert expired == 100 * len(ids)
    assert ledger.verify() == []
    engine.dispose()


def test_two_set_path_runners_at_once_settle_each_member_once(pg_only_url):
    """Two settle_due runners started together over members with maturing, expiring and both-at-once lots
    (and debtors, who take the ordinary path): each member settled by one of them, each point matured or
    expired once, the ledger whole."""
    engine = make_engine(pg_only_url, pool_size=4)
    factory = make_sessionmaker(engine)
    ledger = Ledger(factory)
    ids = [f"S{i}" for i in range(300)]
    ledger.add_members(*ids)
    day = jobs.dt.timedelta(days=1)
    ledger.run(lambda sc, s: setattr(sc.program, "allow_debt", True))

    def awards(s):
        program = get_program(s, "default")
        sc = ops.Scope(s, program, get_wallet(s, program, None), ledger.now, "test")
        for n, mid in enumerate(ids):
            member = m(sc, mid)
            if n % 10 == 0:  # a debtor: 40 of debt, 13 paid by its awards below, 25 by its maturing points
                first = ops.award(sc, member, 40)
                ops.spend(sc, member, 40)
                ops.reverse(sc, first.id)
            ops.award(sc, member, 10, expires_at=ledger.now + day)                           # expires
            ops.award(sc, member, 20, pending_until=ledger.now + day)                       # matures
            ops.award(sc, member, 5, pending_until=ledger.now + day, expires_at=ledger.now + 2 * day)  # both
            ops.award(sc, member, 3, expires_at=ledger.now + 30 * day)                      # stays

    run_in_transaction(factory, awards)
    later = ledger.now + 3 * day
    barrier, reports, errors = threading.Barrier(2), [], []

    def runner():
        barrier.wait()
        try:
            reports.append(jobs.settle_due(factory, later, batch=37))
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    debtors = len(ids) // 10  # (their available points all went to the debt: nothing of theirs expires)
    assert sum(r.entries for r in reports) == 2 * len(ids) - debtors  # a mature and an expire entry each
    with factory() as s:
        kinds = Counter(s.execute(select(JournalEntry.member_pk, JournalEntry.type).where(
            JournalEntry.recorded_at == later)).all())
        expired = s.scalar(select(func.sum(Account.balance)).where(Account.kind == "expiry"))
    assert len(kinds) == 2 * len(ids) - debtors and set(kinds.values()) == {1}
    assert expired == 15 * (len(ids) - debtors)
    for n, mid in enumerate(ids[:20]):
        assert ledger.balances(mid) | {} == {"available": 0 if n % 10 == 0 else 23, "pending": 0, "held": 0,
                                             "frozen": 0, "debt": -2 if n % 10 == 0 else 0}
    assert ledger.verify() == []
    engine.dispose()
