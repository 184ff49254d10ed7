"""A failing run made small: the same operations replayed by one client on a wiped database, fewer and fewer
of them (delta debugging, Zeller's ddmin), down to a list from which no single operation can be dropped
without the failure going away. Dropping an operation is safe: one naming it is then refused, in the model
as in the database."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from jifen.sim.plan import Op, member_ids
from jifen.sim.run import SimulationFailed, simulate
from jifen.sim.world import wipe


def failing_prefix(plan: list[Op], ops_done: int) -> list[Op]:
    """The plan up to the round where the run failed, with the tick that ends it (whose checkpoint may be the
    one that failed)."""
    seen = 0
    for i, op in enumerate(plan):
        seen += op.kind != "tick"
        if seen >= ops_done:
            ticks = [j for j in range(i, len(plan)) if plan[j].kind == "tick"][:1]
            return plan[: (ticks[0] if ticks else len(plan) - 1) + 1]
    return plan


def replay_fails(url: str, clients: int, lose_answers: float = 0.0) -> Callable[[list[Op]], str | None]:
    """A test for ddmin: the failure's message when these operations, by one client, fail; else None. (The lost
    answers are the same ones each time; dropped connections are not replayed.)"""
    members = member_ids(clients)

    def fails(ops: list[Op]) -> str | None:
        wipe(url)
        try:
            simulate(url, [dataclasses.replace(op, client=0) for op in ops], 1, members=members,
                     lose_answers=lose_answers)
        except SimulationFailed as exc:
            return str(exc)
        return None

    return fails


def ddmin(items: list[Op], fails: Callable[[list[Op]], str | None], budget: int = 200) -> tuple[list[Op], int]:
    """A 1-minimal failing sublist of `items` (which fail), and the replays it took; stops at `budget` replays
    with the smallest failing list found so far."""
    runs, n = 0, 2
    while len(items) >= 2 and runs < budget:
        size = math.ceil(len(items) / n)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        candidates = chunks + ([[op for c in chunks if c is not chunk for op in c] for chunk in chunks]
                               if len(chunks) > 2 else [])
        for k, candidate in enumerate(candidates):
            runs += 1
            if fails(candidate):
                items, n = candidate, (2 if k < len(chunks) else max(n - 1, 2))
                break
            if runs >= budget:
                break
        else:
            if n >= len(items):
                break
            n = min(len(items), 2 * n)
    return items, runs
