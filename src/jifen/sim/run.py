"""A simulation run: the plan's rounds carried out by client threads (each operation in its own session), the
model fed with the answers, the clock moved and the jobs run at each tick, and the database compared with the
model at checkpoints (every few ticks and at the end) along with `jifen ledger verify`.

An operation whose outcome is unknown (a database error: the connection dropped, perhaps after the commit)
is sent again with the same keys until it is answered, and then counted once — as a client of the API does."""

from __future__ import annotations

import datetime as dt
import functools
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from jifen.config import get_settings
from jifen.db import make_engine, make_sessionmaker
from jifen.engagement.models import Pool, RedPacket
from jifen.errors import JifenError
from jifen.events.models import Event
from jifen.flows.group_commit import GroupCommit, commit_events
from jifen.jobs import evaluate_tiers_due, expire_red_packets
from jifen.ledger.jobs import release_stale_holds, settle_due
from jifen.ledger.models import Account, Lot
from jifen.ledger.verify import verify
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.notify import dispatcher
from jifen.notify.models import Delivery
from jifen.outbox import OutboxMessage
from jifen.programs.service import get_program
from jifen.sim.actions import Env, act
from jifen.sim.model import Model, Violation
from jifen.sim.plan import Op, member_ids
from jifen.sim.workers import ApiWorkers, OutcomeUnknown
from jifen.sim.world import START, populate

APP_NAME = "jifen-sim"  # the clients' connections, as pg_stat_activity names them (what the faults aim at)
RETRIES = 60
T = TypeVar("T")


@dataclass
class Report:
    ops: int = 0  # operations carried out (ticks aside)
    acked: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    unknown: int = 0  # answers lost to a fault, then sent again with the same keys
    replayed: int = 0  # of those, already done the first time: answered from the stored result
    faults: Counter[str] = field(default_factory=Counter)
    ticks: int = 0
    checkpoints: int = 0
    seconds: float = 0.0

    @property
    def per_hour(self) -> float:
        return self.ops / self.seconds * 3600 if self.seconds else 0.0


class SimulationFailed(AssertionError):
    def __init__(self, message: str, ops_done: int):
        super().__init__(message)
        self.ops_done = ops_done


def rounds(plan: list[Op]) -> Iterator[tuple[list[Op], Op | None]]:
    """The plan's rounds: the operations up to a tick, and the tick (None after the last one)."""
    current: list[Op] = []
    for op in plan:
        if op.kind == "tick":
            yield current, op
            current = []
        else:
            current.append(op)
    if current:
        yield current, None


def persist(report: Report, fn: Callable[[], T]) -> T:
    """fn again while the database fails (a dropped connection, a restarted server): the work is idempotent."""
    for attempt in range(RETRIES):
        try:
            return fn()
        except (DBAPIError, OutcomeUnknown):
            if attempt + 1 == RETRIES:
                raise
            report.unknown += 1
            time.sleep(min(0.02 * 2**attempt, 1.0))
    raise AssertionError("unreachable")


def attempt(env: Env, op: Op, report: Report) -> tuple[dict[str, Any] | None, str | None]:
    """(answer, None) or (None, refusal code)."""
    def once() -> tuple[dict[str, Any] | None, str | None]:
        try:
            return act(env, op), None
        except JifenError as exc:
            return None, exc.code

    answer, refused = persist(report, once)
    if answer is not None and _replayed(answer):  # the work was done by a try whose answer was lost
        report.replayed += 1
    if answer is not None and env.lose_answers and random.Random(op.n).random() < env.lose_answers:
        report.faults["answer lost (sent again, same key)"] += 1
        report.replayed += 1
        again, refused_again = persist(report, once)
        if refused_again is not None or again is None or not _replayed(again) or _gist(again) != _gist(answer):
            raise Violation(f"{op}: sent again with the same keys, answered {again or refused_again} "
                            f"instead of a replay of {answer}")
    return answer, refused


def _replayed(answer: dict[str, Any]) -> bool:
    return bool(answer.get("replayed")) or answer.get("status") == "replayed"


def _gist(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer less what says whether it is a replay."""
    out = {k: v for k, v in answer.items() if k != "replayed"}
    if out.get("status") == "replayed":
        out["status"] = "processed"
    return out


class Faults(threading.Thread):
    """Drops one of the clients' PostgreSQL connections (pg_terminate_backend) at random moments."""

    def __init__(self, url: str, seed: int, report: Report, mean_seconds: float = 0.5):
        super().__init__(name="jifen-sim-faults", daemon=True)
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.rng, self.report, self.mean = random.Random(seed), report, mean_seconds
        self.halt = threading.Event()

    def run(self) -> None:
        import psycopg

        while not self.halt.wait(self.rng.expovariate(1 / self.mean)):
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    killed = conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                        "AND datname = current_database() AND pid <> pg_backend_pid() ORDER BY random() LIMIT 1",
                        (APP_NAME,)).fetchall()
                if killed:
                    self.report.faults["connection terminated"] += 1
            except psycopg.Error:
                pass  # the database is busy or restarting: the next try


def observed(s: Session) -> dict[str, Any]:
    """The database's side of a checkpoint."""
    balances: dict[str, dict[str, int]] = defaultdict(dict)
    for mid, kind, balance in s.execute(select(Member.member_id, Account.kind, Account.balance).join(
            Account, Account.member_pk == Member.id)):
        balances[mid][kind] = balance
    lots: dict[str, list[tuple]] = defaultdict(list)
    for row in s.execute(select(Member.member_id, Lot.expires_at, Lot.available, Lot.pending, Lot.held, Lot.frozen)
                         .join(Lot, Lot.member_pk == Member.id)):
        if any(row[2:]):
            lots[row[0]].append(tuple(row[1:]))
    counts = {f"events.{t}": n for t, n in s.execute(select(Event.type, func.count()).where(
        Event.type.in_(("purchase", "refund", "check_in"))).group_by(Event.type))}
    counts |= {name: s.scalar(select(func.count()).select_from(model)) or 0
               for name, model in (("redemptions", Redemption), ("red_packets", RedPacket), ("pools", Pool))}
    return {"balances": balances, "lots": {k: sorted(v) for k, v in lots.items()}, "counts": counts,
            "stock": {r.code: (r.stock, r.sold) for r in s.scalars(select(Reward))},
            "problems": [str(p) for p in verify(s)]}


def differences(model: Model, seen: dict[str, Any]) -> list[str]:
    out = [f"ledger verify: {p}" for p in seen["problems"]]
    for member in model.lots:
        want = model.balances(member) | {"debt": 0}
        got = {k: seen["balances"].get(member, {}).get(k, 0) for k in want}
        if want != got:
            out.append(f"{member} balances: model {want}, database {got}")
        elif model.lot_states(member) != seen["lots"].get(member, []):
            out.append(f"{member} lots: model {model.lot_states(member)}, database {seen['lots'].get(member, [])}")
    stock = {code: (model.stock[code], model.sold[code]) for code in model.stock}
    if stock != seen["stock"]:
        out.append(f"stock (left, sold): model {stock}, database {seen['stock']}")
    want_counts = model.counts()
    got_counts = {k: seen["counts"].get(k, 0) for k in want_counts}
    if want_counts != got_counts:
        out.append(f"rows (each acknowledged operation once): model {want_counts}, database {got_counts}")
    return out


def simulate(url: str, plan: list[Op], clients: int, *, members: list[str] | None = None, faults: bool = False,
             lose_answers: float = 0.0, seed: int = 0, checkpoint_every: int = 4, api_workers: int = 0,
             kill_workers: float = 0.0, progress: Callable[[Report], None] | None = None) -> Report:
    """Carry out the plan on a database that has just been wiped (world.wipe); raises SimulationFailed at the
    first violation, with how many operations had been carried out. Faults: `faults` drops the clients'
    connections at random moments (PostgreSQL) and kills the job runner in the middle of its run at each tick;
    `lose_answers` is the share of answers lost on their way
    back (the same operations each time: a replay meets the same losses). `api_workers` carries the operations
    out in that many worker processes (sim/workers.py), and `kill_workers` is the share of operations whose
    worker is killed with SIGKILL while they are under way."""
    pg = url.startswith("postgresql")
    report = Report()
    engine = make_engine(url, **({"connect_args": {"application_name": APP_NAME}, "pool_size": clients + 4,
                                  "max_overflow": 4} if pg else {}))
    factory = make_sessionmaker(engine)

    @event.listens_for(engine, "handle_error")
    def _dropped(ctx: Any) -> None:
        if ctx.is_disconnect:
            report.faults["connection lost (seen by a client)"] += 1

    members = members or member_ids(clients)
    populate(factory, members)
    env = Env(factory, START, lose_answers=lose_answers)
    with factory() as s:
        env.program_id = get_program(s, "default").id
    env.group = GroupCommit(factory, window_ms=3, max_size=64, name="sim-events",
                            commit=lambda f, key, items: commit_events(f, key, items, clock=env.clock))
    env.group.start()
    workers = ApiWorkers(url, clients, api_workers, seed=seed, kill_rate=kill_workers, app_name=APP_NAME,
                         faults=report.faults) if api_workers else None
    if workers:
        env.remote = lambda op: workers.call(op, env.now, env.snapshot())
    model = Model(members, START)
    chaos = Faults(url, seed, report) if faults and pg else None
    if chaos:
        chaos.start()
    chaos_rng = random.Random(seed)
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(max(1, clients), thread_name_prefix="jifen-sim-client") as pool:
            for ops, tick in rounds(plan):
                _round(env, model, pool, ops, report)
                if tick is not None:
                    now = env.now + dt.timedelta(days=tick.args["days"])
                    if faults and report.ticks % 3 == 0:  # (every third tick: a process start costs seconds)
                        kill_jobs_midway(url, now, chaos_rng, report)
                    persist(report, functools.partial(_jobs, factory, now))
                    env.now = now
                    model.apply(tick, None, None)
                    report.ticks += 1
                    if report.ticks % checkpoint_every == 0:
                        _checkpoint(factory, model, report)
                if progress:
                    progress(report)
            # The last round's messages out of the outbox, and what a killed dispatcher left under its lease.
            persist(report, functools.partial(_dispatch, factory, env.now + dispatcher.LEASE + dt.timedelta(seconds=1)))
            _checkpoint(factory, model, report, final=True)
    except Violation as exc:
        raise SimulationFailed(str(exc), report.ops) from None
    finally:
        report.seconds = time.monotonic() - began
        if chaos:
            chaos.halt.set()
            chaos.join()
        env.group.stop()
        if workers:
            workers.stop()
        engine.dispose()
    return report


def _round(env: Env, model: Model, pool: ThreadPoolExecutor, ops: list[Op], report: Report) -> None:
    """The clients carry out their operations side by side; the model takes the answers client by client (each
    member's operations came from one client, in its order)."""
    by_client: dict[int, list[Op]] = defaultdict(list)
    for op in ops:
        by_client[op.client].append(op)

    def client(mine: list[Op]) -> list[tuple[Op, dict[str, Any] | None, str | None]]:
        return [(op, *attempt(env, op, report)) for op in mine]

    for done in pool.map(client, [by_client[c] for c in sorted(by_client)]):
        for op, answer, refused in done:
            report.ops += 1
            if refused is None:
                report.acked += 1
            else:
                report.refused[refused] += 1
            model.apply(op, answer, refused)
    if over := model.oversold():
        raise Violation("; ".join(over))


def kill_jobs_midway(url: str, now: dt.datetime, rng: random.Random, report: Report) -> None:
    """The tick's jobs in a process of their own, killed with SIGKILL at a random moment of their run (the
    caller then runs them to the end: what a restarted `jifen worker` does)."""
    runner = subprocess.Popen([sys.executable, "-c", "import sys; from jifen.sim.run import jobs_main; jobs_main()",
                               url, now.isoformat()], stdout=subprocess.PIPE, text=True)
    try:
        assert runner.stdout is not None
        if runner.stdout.readline().strip() == "ready":
            time.sleep(rng.uniform(0, 0.2))
            if runner.poll() is None:
                report.faults["job runner killed (SIGKILL)"] += 1
    finally:
        runner.kill()
        runner.wait()


def jobs_main() -> None:
    """`python -c …jobs_main()` URL NOW: the jobs at that time (the process kill_jobs_midway kills)."""
    url, now = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2])
    engine = make_engine(url)
    print("ready", flush=True)
    _jobs(make_sessionmaker(engine), now)


def _jobs(factory: sessionmaker[Session], now: dt.datetime) -> None:
    """What `jifen serve` runs in the background, at the simulated time (resumable: after a failure the whole
    list runs again and finds done what was done), and the dispatcher."""
    release_stale_holds(factory, now)
    settle_due(factory, now)
    evaluate_tiers_due(factory, now)
    expire_red_packets(factory, now)
    _dispatch(factory, now)


def _dispatch(factory: sessionmaker[Session], now: dt.datetime) -> None:
    """The outbox fanned out and delivered, to the members' inboxes only (no Redis, mail or provider is
    written to from a simulation, whatever the settings say)."""
    dispatcher.run_once(factory, now, settings=get_settings().model_copy(update=dict.fromkeys(
        ("redis_url", "smtp_url", "sms_url", "wechat_url"))))


def _checkpoint(factory: sessionmaker[Session], model: Model, report: Report, final: bool = False) -> None:
    def look() -> dict[str, Any]:
        with factory() as s:
            return observed(s) | {"outbox": outbox_problems(s, final)}

    seen = persist(report, look)
    found = differences(model, seen) + seen["outbox"]
    report.checkpoints += 1
    if found:
        raise Violation(f"checkpoint {report.checkpoints} at {model.now:%Y-%m-%d}: " + "; ".join(found[:8]))


def outbox_problems(s: Session, final: bool) -> list[str]:
    """Checked right after the dispatcher ran: every outbox message fanned out, none into two deliveries to the
    same place (a dispatcher killed mid-batch must not fan out twice); at the end, every delivery delivered
    (leases included: the last run's clock is past them)."""
    out = []
    if waiting := s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.fanned_out.is_(False))):
        out.append(f"outbox: {waiting} messages not fanned out")
    doubled = s.scalar(select(func.count()).select_from(select(Delivery.message_id).group_by(
        Delivery.message_id, Delivery.channel, Delivery.target).having(func.count() > 1).subquery()))
    if doubled:
        out.append(f"outbox: {doubled} messages fanned out twice to the same place")
    if final and (left := dict(s.execute(select(Delivery.status, func.count()).where(
            Delivery.status.in_(("pending", "sending"))).group_by(Delivery.status)).all())):
        out.append(f"outbox: deliveries left undelivered {left}")
    return out
