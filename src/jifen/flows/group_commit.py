"""Group commit of single events: the concurrent POST /v1/events requests of one server process are gathered
and committed in one transaction through the intake's set path (`ingest(..., strict=False)`, the batch
endpoint's), then each request is given its own answer.

A worker thread takes the first waiting request, then gathers more until `window_ms` have passed since that
request arrived or `max_size` are waiting. The gathered requests are split by programme and actor (`ingest`
takes one of each), each group keeping arrival order (`ingest` then takes each member's events in the order
they occurred, the earlier arrival first among equals), and each group runs in one transaction; the next
requests gather while it commits. A group's answers are handed out only once its transaction has committed.

Each request is answered as it would be alone (docs/architecture.md, "Group commit"):
- processed or replayed: its result from the group (a second request with the same event_id in the group is
  a replay of the first, or `event_id_reused` when its body differs, as the two sent one after the other);
- refused by risk control: the group's transaction recorded its case and alert, the answer is rebuilt from
  its result;
- refused for another reason (unknown member, duplicate order, a restriction …): it changed nothing, and
  the request runs alone (`ALONE`), which refuses it with the status, message and details it gets today;
- the group's transaction failed (after run_in_transaction's retries of lock and serialization failures):
  every request of the group runs alone, so one poisoned request fails by itself.
A lone request (nothing else arrived within the window) runs alone too, in its own request's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jifen.db import run_in_transaction, utcnow
from jifen.errors import JifenError
from jifen.events.schemas import EventIn
from jifen.flows.intake import ingest
from jifen.metrics import GROUP_SIZE
from jifen.programs.models import Program
from jifen.risk.scoring import RiskBlocked
from jifen.security import changes

log = logging.getLogger("jifen.group_commit")

# What a request is given: its result, the error to answer with, or ALONE: run the request by itself.
Outcome = dict[str, Any] | JifenError | None
ALONE: Outcome = None


@dataclass
class _Request:
    program_id: int
    actor: str | None
    event: EventIn
    collector: list[Any] | None  # the request's audit collector (security/changes.py)
    arrived: float = field(default_factory=time.monotonic)
    future: Future[Outcome] = field(default_factory=Future)


_STOP = object()


class GroupCommit:
    """One per app (api.py starts and stops it with the app); `submit` is safe from any thread."""

    def __init__(self, factory: sessionmaker[Session], window_ms: float, max_size: int):
        self.factory, self.window, self.max_size = factory, window_ms / 1000, max(1, max_size)
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
            self._thread = threading.Thread(target=self._loop, name="jifen-group-commit", daemon=True)
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

    def submit(self, program_id: int, actor: str | None, event: EventIn) -> Future[Outcome]:
        """The request's outcome, once its group has committed (at once ALONE when the worker is not running).
        Called in the request's context, whose audit collector is taken along."""
        request = _Request(program_id, actor, event, changes.current.get())
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
            groups: dict[tuple[int, str | None], list[_Request]] = {}
            for r in gathered:
                groups.setdefault((r.program_id, r.actor), []).append(r)
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
        GROUP_SIZE.observe(len(group))
        if len(group) == 1:
            return  # (answered ALONE by the caller: as it would be without group commit)
        events = [r.event for r in group]

        def tx(session: Session) -> list[dict[str, Any]]:
            program = session.get_one(Program, group[0].program_id)
            return ingest(session, program, events, now=utcnow(), actor=group[0].actor, strict=False)

        collected: list[Any] = []  # what the group's transaction changed, for each request's audit line
        token = changes.current.set(collected)
        try:
            results = run_in_transaction(self.factory, tx)
        except Exception:  # noqa: BLE001 - any failure of the group: each request is run alone
            log.warning("a group of %d events failed; each runs alone", len(group), exc_info=True)
            return
        finally:
            changes.current.reset(token)
        for r, result in zip(group, results, strict=True):
            if r.collector is not None:
                r.collector.extend(collected)
            r.future.set_result(_outcome(result))


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

