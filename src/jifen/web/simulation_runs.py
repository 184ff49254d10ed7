"""What-if simulations the console runs in the background (a 30-day replay takes seconds to tens of
seconds): one thread per run, its progress and result kept in memory for the page to poll. A run is
read-only, so losing one on a restart loses nothing but the wait."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jifen.errors import Conflict, NotFound

log = logging.getLogger("jifen.web.simulation")
KEPT = 50  # finished runs remembered (the oldest forgotten first)


@dataclass
class Run:
    id: str
    program_id: int
    state: str = "running"  # running, done, failed
    done: int = 0
    total: int | None = None  # known once the events are counted
    report: dict[str, Any] | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def view(self) -> dict[str, Any]:
        with self.lock:
            return {"id": self.id, "state": self.state, "done": self.done, "total": self.total,
                    "report": self.report, "error": self.error}


class SimulationRuns:
    def __init__(self) -> None:
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, program_id: int, work: Callable[[Callable[[int, int], None]], dict[str, Any]]) -> Run:
        """Run work(progress) in a thread; its result becomes the run's report. One run at a time per
        programme (a replay holds the GIL for long stretches: several would slow every request)."""
        run = Run(uuid.uuid4().hex, program_id)
        with self._lock:
            busy = next((r for r in self._runs.values() if r.program_id == program_id and r.state == "running"), None)
            if busy is not None:
                raise Conflict("a simulation is already running; wait for it to finish", code="simulation_running",
                               details={"url": f"/console/rules/simulations/{busy.id}"})
            self._runs[run.id] = run
            while len(self._runs) > KEPT:
                self._runs.popitem(last=False)

        def progress(done: int, total: int) -> None:
            with run.lock:
                run.done, run.total = done, total

        def target() -> None:
            try:
                report = work(progress)
                with run.lock:
                    run.report, run.state = report, "done"
            except Exception as exc:  # (a thread's exception would otherwise only reach stderr)
                log.exception("simulation %s failed", run.id)
                with run.lock:
                    run.error, run.state = getattr(exc, "message", None) or type(exc).__name__, "failed"

        threading.Thread(target=target, name=f"simulation-{run.id[:8]}", daemon=True).start()
        return run

    def get(self, program_id: int, run_id: str) -> Run:
        """A run of this programme (another programme's runs are not found)."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.program_id != program_id:
            raise NotFound("no such simulation (runs are kept in memory until the server restarts)",
                           code="unknown_simulation")
        return run
