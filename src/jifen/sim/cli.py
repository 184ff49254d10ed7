"""`jifen sim`: seeded runs on the configured (scratch) database; a failure prints its seed and the shortest
operation list that replays it."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from jifen.clikit import err, fail, out, took
from jifen.config import get_settings

if TYPE_CHECKING:
    from jifen.sim.run import SimulationFailed

LOSE = 0.05  # of the answers, with --faults
KILL = 0.02  # of the operations: their API worker killed with SIGKILL while they are under way, with --faults


def sim(seed: Annotated[int, typer.Option(help="the first run's seed (the next runs take the following ones)")] = 1,
        ops: Annotated[int, typer.Option(min=1, max=10_000_000, help="operations per run")] = 1000,
        clients: Annotated[int, typer.Option(min=1, max=64, help="concurrent clients")] = 8,
        runs: Annotated[int, typer.Option(min=1, max=10_000, help="runs, one seed each")] = 1,
        faults: Annotated[bool, typer.Option(help="drop the clients' connections (PostgreSQL), lose answers, and kill "
                                                  "API workers and the job runner (SIGKILL) at random moments")] = True,
        api_workers: Annotated[int, typer.Option(min=0, max=16, help="worker processes carrying the "
                                                 "operations out, as `jifen serve --workers` (0: in the simulation's "
                                                 "process; PostgreSQL only)")] = 2,
        shrink: Annotated[bool, typer.Option(help="on a failure, look for the shortest failing list")] = True):
    """Seeded simulation: mixed operations from concurrent clients under a simulated clock, the database compared
    with an independent model at checkpoints and `ledger verify` (docs/reliability.md). Needs a database without
    members: it is wiped before each run."""
    # (imported here: every other command starts without loading the simulation, a second on a small machine)
    from jifen.sim.plan import generate
    from jifen.sim.run import Report, SimulationFailed, simulate
    from jifen.sim.world import ensure_empty, wipe

    url = get_settings().database_url
    ensure_empty(url)
    if not url.startswith("postgresql"):
        api_workers = 0  # SQLite's one writer is best served by one process (as `jifen serve` refuses --workers)
    total, faults_seen = Report(), Counter[str]()
    for s in range(seed, seed + runs):
        wipe(url)
        plan = generate(s, ops, clients)
        try:
            report = simulate(url, plan, clients, faults=faults, lose_answers=LOSE if faults else 0.0, seed=s,
                              api_workers=api_workers, kill_workers=KILL if faults and api_workers else 0.0)
        except SimulationFailed as exc:
            _failed(url, s, ops, clients, plan, exc, shrink, faults)
        out.print(f"seed {s}: {report.ops} operations ({report.acked} acknowledged), {report.ticks} days moved, "
                  f"{report.checkpoints} checkpoints equal to the model, in {took(report.seconds)} "
                  f"({report.per_hour:,.0f} operations/hour)", highlight=False)
        for name in ("ops", "acked", "unknown", "replayed", "ticks", "checkpoints", "seconds"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.refused.update(report.refused)
        faults_seen.update(report.faults)
    table = Table(title=f"{runs} run(s), seeds {seed}–{seed + runs - 1}, {clients} clients: no violation")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in [("operations", total.ops), ("acknowledged", total.acked),
                         ("refused (the model agreeing)", sum(total.refused.values())),
                         ("sent again after an unknown outcome", total.unknown),
                         ("answered as replays", total.replayed), ("checkpoints", total.checkpoints),
                         ("operations per hour", f"{total.per_hour:,.0f}"),
                         *((f"fault: {k}", v) for k, v in sorted(faults_seen.items()))]:
        table.add_row(label, str(value))
    out.print(table)


def _failed(url: str, seed: int, ops: int, clients: int, plan, exc: SimulationFailed, shrink: bool,
            faults: bool) -> None:
    err.print(f"seed {seed} FAILED after {exc.ops_done} operations: {exc}", markup=False, highlight=False,
              soft_wrap=True)
    err.print(f"replay: jifen sim --seed {seed} --ops {ops} --clients {clients}", markup=False, highlight=False)
    if shrink:
        from jifen.sim.shrink import ddmin, failing_prefix, replay_fails

        fails = replay_fails(url, clients, LOSE if faults else 0.0)
        prefix = failing_prefix(plan, exc.ops_done)
        if fails(prefix) is None:
            fail("the failure does not come back with one client: it needs the clients' interleaving "
                 f"(the whole list: seed {seed})")
        smallest, replays = ddmin(prefix, fails)
        err.print(f"shortest failing list ({len(smallest)} operations, one client, {replays} replays): "
                  f"{fails(smallest)}", markup=False, highlight=False, soft_wrap=True)
        for op in smallest:
            err.print(f"  {op}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)
