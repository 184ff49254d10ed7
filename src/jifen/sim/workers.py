"""API worker processes for the simulation, and their SIGKILL at seeded random moments.

With `api_workers`, the clients' operations are not carried out in the simulation's own process but in worker
processes, as `jifen serve --workers N` carries out requests: each client talks to one worker (client % N) over
a pipe, each worker answers its clients on threads of its own and commits single events through its own group
commit. A worker killed with SIGKILL takes its open transactions with it; its clients see no answer (outcome
unknown) and send the same operation again, with the same keys, to the worker started in its place — what
Uvicorn's supervisor and a well-behaved client do. Workers are forked from a forkserver that has imported the
simulation once, so a replacement answers within milliseconds, not after a fresh interpreter's import."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import signal
import threading
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy.exc import DBAPIError

from jifen.db import make_engine, make_sessionmaker, run_in_transaction
from jifen.errors import JifenError
from jifen.flows.group_commit import GroupCommit, commit_events
from jifen.programs.service import get_program
from jifen.sim.actions import Env, act
from jifen.sim.plan import Op

KILLED = "API worker killed (SIGKILL)"
KILLED_IN_FLIGHT = "of which with operations in flight"


class OutcomeUnknown(Exception):
    """No answer: the worker died, or its database connection failed (the operation may or may not be done)."""


class _Slot:
    """One worker process and the pipes of its clients; `generation` counts the replacements."""

    def __init__(self, ctx: Any, url: str, app_name: str, clients: list[int]):
        self.ctx, self.url, self.app_name, self.clients = ctx, url, app_name, clients
        self.lock = threading.Lock()
        self.generation = 0
        self.in_flight = 0
        self.conns: dict[int, Connection] = {}
        self.process: Any = None
        self._start()

    def _start(self) -> None:
        pairs = {c: self.ctx.Pipe() for c in self.clients}
        self.conns = {c: mine for c, (mine, _) in pairs.items()}
        self.process = self.ctx.Process(target=serve_worker, args=(
            self.url, self.app_name, {c: theirs for c, (_, theirs) in pairs.items()}), daemon=True)
        self.process.start()
        for _, theirs in pairs.values():
            theirs.close()  # only the worker holds them now: its death is an EOF on our side

    def replace(self, generation: int) -> None:
        """A new worker in place of a dead one (once, whichever of its clients noticed first)."""
        with self.lock:
            if self.generation != generation:
                return
            self.process.kill()
            self.process.join()
            for conn in self.conns.values():
                conn.close()
            self._start()
            self.generation += 1

    def stop(self) -> None:
        with self.lock:
            self.process.kill()
            self.process.join()
            for conn in self.conns.values():
                conn.close()


class ApiWorkers:
    """`call(op, now, ids)` carries an operation out in its client's worker; `kill_rate` of the operations
    (chosen by the seed and the operation's number, on its first send) have their worker killed with SIGKILL
    0–50 ms after they are sent: in the middle of the operation, just after its commit, or between two."""

    def __init__(self, url: str, clients: int, count: int, *, seed: int, kill_rate: float, app_name: str,
                 faults: Counter[str]):
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["jifen.sim.workers"])
        self.seed, self.kill_rate, self.faults = seed, kill_rate, faults
        self.slots = [_Slot(ctx, url, app_name, [c for c in range(clients) if c % count == i])
                      for i in range(min(count, clients))]
        self._sent: set[int] = set()
        self._lock = threading.Lock()

    def call(self, op: Op, now: dt.datetime, ids: dict[int, int]) -> dict[str, Any]:
        slot = self.slots[op.client % len(self.slots)]
        with slot.lock:
            generation, conn = slot.generation, slot.conns[op.client]
            slot.in_flight += 1
        try:
            self._maybe_kill(slot, generation, op)
            conn.send((op, now, ids))
            reply = conn.recv()
        except (EOFError, OSError) as exc:
            slot.replace(generation)
            raise OutcomeUnknown(f"worker gone: {exc!r}") from None
        finally:
            with slot.lock:
                slot.in_flight -= 1
        kind, value = reply
        if kind == "ok":
            return value
        if kind == "refused":
            raise JifenError(value[1], code=value[0])
        if kind == "unknown":
            raise OutcomeUnknown(value)
        raise RuntimeError(f"{op} failed in the API worker:\n{value}")

    def _maybe_kill(self, slot: _Slot, generation: int, op: Op) -> None:
        with self._lock:
            first = op.n not in self._sent
            self._sent.add(op.n)
        rng = random.Random(f"{self.seed}:{op.n}")
        if first and rng.random() < self.kill_rate:
            threading.Timer(rng.uniform(0, 0.05), self._kill, args=(slot, generation)).start()

    def _kill(self, slot: _Slot, generation: int) -> None:
        with slot.lock:
            if slot.generation != generation or not slot.process.is_alive():
                return
            busy = slot.in_flight
            os.kill(slot.process.pid, signal.SIGKILL)
        with self._lock:
            self.faults[KILLED] += 1
            if busy:
                self.faults[KILLED_IN_FLIGHT] += 1

    def stop(self) -> None:
        for slot in self.slots:
            slot.stop()


def serve_worker(url: str, app_name: str, conns: dict[int, Connection]) -> None:
    """The worker process: one thread per client, one engine and group commit for all (as an API worker has)."""
    pg = url.startswith("postgresql")
    engine = make_engine(url, **({"connect_args": {"application_name": app_name}} if pg else {}))
    factory = make_sessionmaker(engine)
    env = Env(factory, dt.datetime.now(dt.UTC))
    env.program_id = run_in_transaction(factory, lambda s: get_program(s, "default").id)  # (retried: a dropped connection)
    env.group = GroupCommit(factory, window_ms=3, max_size=64, name="sim-worker-events",
                            commit=lambda f, key, items: commit_events(f, key, items, clock=env.clock))
    env.group.start()
    threads = [threading.Thread(target=_answer, args=(env, conn), daemon=True) for conn in conns.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _answer(env: Env, conn: Connection) -> None:
    while True:
        try:
            op, now, ids = conn.recv()
        except (EOFError, OSError):
            return
        with env.lock:
            env.now = now  # (every operation of a round carries the same time)
            env.ids.update(ids)
        try:
            reply: tuple[str, Any] = ("ok", act(env, op))
        except JifenError as exc:
            reply = ("refused", (exc.code, exc.message))
        except DBAPIError as exc:
            reply = ("unknown", str(exc).splitlines()[0])
        except Exception:  # a bug: the simulation stops and shows it
            reply = ("error", traceback.format_exc())
        conn.send(reply)
