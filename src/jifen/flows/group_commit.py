"""Group commit of single requests: the concurrent requests of one kind in one server process are gathered and
committed in one transaction, then each request is given its own answer. Two kinds use it: single events
(POST /v1/events, through the intake's set path) and keyed writes (POST /v1/redemptions, each in its own
savepoint, the stock of the group's rewards taken once: flows/redeem.py).

A worker thread per kind takes the first waiting request, then gathers more until `window_ms` have passed since
that request arrived or `max_size` are waiting. The gathered requests are split by their group key (events:
programme and actor, which `ingest` takes one of; writes: programme), each group keeping arrival order, and
each group runs in one transaction; the next requests gather while it commits. A group's answers are handed
out only once its transaction has committed.

Events: each request is answered as it would be alone (docs/architecture.md, "Group commit"):
- processed or replayed: its result from the group (a second request with the same event_id in the group is
  a replay of the first, or `event_id_reused` when its body differs, as the two sent one after the other);
  `ingest` takes each member's events in the order they occurred, the earlier arrival first among equals;
- refused by risk control: the group's transaction recorded its case and alert, the answer is rebuilt from
  its result;
- refused for another reason (unknown member, duplicate order, a restriction …): it changed nothing, and
  the request runs alone (`ALONE`), which refuses it with the status, message and details it gets today.
Writes (`commit_writes`): each runs in arrival order in a savepoint of the group's transaction, keyed by its
Idempotency-Key as `apikit.write` keys it; a write refused (a JifenError) is rolled back to its savepoint and
answered with its error in the group; one refused by risk control runs alone (its case is written by the
app's RiskBlocked handler, outside the refused request's transaction). A write the kind knows will be refused
without changing anything (a redemption of a reward the group has sold out) is deferred and answered after the
others, all such writes in one pass (`Grouped.defers` / `answer`).
For both: the group's transaction failed (after run_in_transaction's retries of lock and serialization
failures): every request of the group runs alone, so one poisoned request fails by itself. A lone request
(nothing else arrived within the window) runs alone too, in its own request's thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from sqlalchemy.orm import Session, joinedload, sessionmaker

from jifen.db import run_in_transaction, utcnow
from jifen.errors import JifenError
from jifen.events.schemas import EventIn
from jifen.flows.intake import ingest
from jifen.idempotency import idempotent
from jifen.ledger.operations import Scope
from jifen.metrics import GROUP_SIZE
from jifen.programs.models import Program, Wallet
from jifen.programs.service import get_wallet
from jifen.risk.scoring import RiskBlocked
from jifen.security import changes

log = logging.getLogger("jifen.group_commit")

# What a request is given: its result, the error to answer with, or ALONE: run the request by itself.
Outcome = Any
ALONE: Outcome = None
# A kind's commit: one group's items (same key, in arrival order) in one transaction, an outcome for each; it
# raises when the group failed (each request then runs alone).
Commit = Callable[[sessionmaker[Session], Any, list[Any]], list[Outcome]]


@dataclass
class _Request:
    key: Hashable  # requests of one key may share a transaction
    item: Any
    collector: list[Any] | None  # the request's audit collector (security/changes.py)
    arrived: float = field(default_factory=time.monotonic)
    future: Future[Outcome] = field(default_factory=Future)


_STOP = object()


class GroupCommit:
    """One per app and kind (api.py starts and stops them with the app); `submit` is safe from any thread.
    Single events unless another `commit` is given."""

    def __init__(self, factory: sessionmaker[Session], window_ms: float, max_size: int,
                 commit: Commit | None = None, name: str = "events"):
        self.factory, self.window, self.max_size = factory, window_ms / 1000, max(1, max_size)
        self.commit: Commit = commit or commit_events
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._open = False

    @property
    def enabled(self) -> bool:
        return self.window > 0 and self.max_size > 1

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or not self.enabled:
                return
            self._open = True
            self._thread = threading.Thread(target=self._loop, name=f"jifen-group-commit-{self.name}",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Commit what was submitted before, then end the worker; later requests run alone."""
        with self._lock:
            thread, self._open = self._thread, False
            if thread is None:
                return
            self._queue.put(_STOP)
        thread.join()
        with self._lock:
            self._thread = None

    def submit(self, key: Hashable, item: Any) -> Future[Outcome]:
        """The request's outcome, once its group has committed (at once ALONE when the worker is not running).
        Called in the request's context, whose audit collector is taken along."""
        request = _Request(key, item, changes.current.get())
        with self._lock:
            if self._open:
                self._queue.put(request)
                return request.future
        request.future.set_result(ALONE)
        return request.future

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            gathered, stopping = self._gather(first)
            groups: dict[Hashable, list[_Request]] = {}
            for r in gathered:
                groups.setdefault(r.key, []).append(r)
            for group in groups.values():
                try:
                    self._commit(group)
                finally:  # whatever went wrong, no request is left waiting
                    for r in group:
                        if not r.future.done():
                            r.future.set_result(ALONE)

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """The first request and those arriving within the window (counted from the first one's arrival: it
        may have waited while the previous group committed); True when the app is stopping."""
        gathered = [first]
        deadline = first.arrived + self.window
        while len(gathered) < self.max_size:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                return gathered, True
            gathered.append(item)
        return gathered, False

    def _commit(self, group: list[_Request]) -> None:
        GROUP_SIZE.labels(self.name).observe(len(group))
        if len(group) == 1:
            return  # (answered ALONE by the caller: as it would be without group commit)
        collected: list[Any] = []  # what the group's transaction changed, for each request's audit line
        token = changes.current.set(collected)
        try:
            outcomes = self.commit(self.factory, group[0].key, [r.item for r in group])
        except Exception:  # noqa: BLE001 - any failure of the group: each request is run alone
            log.warning("a group of %d %s failed; each runs alone", len(group), self.name, exc_info=True)
            return
        finally:
            changes.current.reset(token)
        for r, outcome in zip(group, outcomes, strict=True):
            if r.collector is not None and outcome is not ALONE:
                r.collector.extend(collected)
            r.future.set_result(outcome)


def commit_events(factory: sessionmaker[Session], key: tuple[int, str | None], events: list[EventIn],
                  clock: Callable[[], dt.datetime] = utcnow) -> list[Outcome]:
    """Single events through the intake's set path (the batch endpoint's); `clock` is the time they are taken
    at (a simulation's own clock, jifen/sim)."""
    program_id, actor = key

    def tx(session: Session) -> list[dict[str, Any]]:
        # (its wallets in the same query: the intake reads them next, a round trip each costs more than the join)
        program = session.get_one(Program, program_id, options=[joinedload(Program.wallets)])
        return ingest(session, program, events, now=clock(), actor=actor, strict=False)

    return [_outcome(result) for result in run_in_transaction(factory, tx)]


def _outcome(result: dict[str, Any]) -> Outcome:
    """A request's outcome from its result in the group (see the module's docstring)."""
    if result["status"] != "rejected":
        return result
    error = result["error"]
    if error["code"] != RiskBlocked.code:
        return ALONE
    # Alone, the refusal is answered with the verdict as it was before its case was written: no case_id.
    risk = {k: v for k, v in result["risk"].items() if k != "case_id"}
    return JifenError(error["message"], code=error["code"], status=RiskBlocked.status, details={"risk": risk})



@dataclass
class Write:
    """A keyed write through the ledger's scope (`apikit.write`), to be committed with others of its kind."""

    key: str  # its Idempotency-Key
    operation: str
    payload: dict[str, Any]  # the request's body as JSON: the idempotency record's hash, and what a kind looks at
    work: Callable[[Scope], Any]  # its JSON answer
    actor: str | None = None
    wallet: str | None = None


class Grouped(Protocol):
    """What a kind of write keeps across its group's writes (flows/redeem.py: the stock taken once): `mark`
    before each write, `undo(mark)` when that write was rolled back to its savepoint, `close` after the last.
    `defers(write)`, asked in turn: True for a write that will be refused without changing anything (a
    sold-out reward), to be answered after the others by `answer`, all such writes at once (in a few
    statements instead of a savepoint and a round of reads each)."""

    def mark(self) -> Any: ...

    def undo(self, mark: Any) -> None: ...

    def defers(self, write: Write) -> bool: ...

    def answer(self, writes: list[Write], now: dt.datetime) -> list[Outcome]: ...

    def close(self) -> None: ...


def commit_writes(factory: sessionmaker[Session], program_id: int, writes: list[Write],
                  open_group: Callable[[Session, Program, list[Write]], Grouped] | None = None) -> list[Outcome]:
    """The writes in arrival order, each in a savepoint; an outcome (result, replayed) or its refusal each."""

    def tx(session: Session) -> list[Outcome]:
        program, now = session.get_one(Program, program_id), utcnow()
        grouped = open_group(session, program, writes) if open_group else None
        wallets: dict[str | None, Wallet] = {}
        outcomes: list[Outcome] = []
        deferred: dict[int, Write] = {}
        for n, w in enumerate(writes):
            if grouped and grouped.defers(w):
                deferred[n] = w
                outcomes.append(ALONE)  # (answered below)
                continue
            mark = grouped.mark() if grouped else None
            outcome: Outcome
            try:
                with session.begin_nested():
                    if w.wallet not in wallets:
                        wallets[w.wallet] = get_wallet(session, program, w.wallet)
                    sc = Scope(session, program, wallets[w.wallet], now, actor=w.actor)
                    outcome = idempotent(session, program.id, w.key, w.operation, w.payload, partial(w.work, sc))
            except JifenError as exc:
                # Alone, the app's RiskBlocked handler writes the case outside the refused request.
                outcome = ALONE if isinstance(exc, RiskBlocked) else exc
                if grouped:
                    grouped.undo(mark)
            outcomes.append(outcome)
        if grouped:
            for n, outcome in zip(deferred, grouped.answer(list(deferred.values()), now) if deferred else [],
                                  strict=True):
                outcomes[n] = outcome
            grouped.close()
        return outcomes

    return run_in_transaction(factory, tx)
