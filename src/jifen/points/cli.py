"""`jifen ledger …`: check every invariant and the hash chains, publish the chain head, run the jobs."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.progress import Progress
from sqlalchemy import func, select

from jifen.clikit import ProgramOpt, err, fail, out, sessions

ledger_app = typer.Typer(help="Ledger checks and jobs.", no_args_is_help=True)


@ledger_app.command("verify")
def ledger_verify(expect_head: Annotated[str | None, typer.Option(
        help="chain-head hash published earlier; also proves nothing was rewritten wholesale")] = None,
                  program: ProgramOpt = "default",
                  processes: Annotated[int | None, typer.Option(
                      min=1, help="spans of the hash chains checked at once (PostgreSQL: connections, which hash on the "
                      "server; SQLite: processes) [default: one per CPU]")] = None,
                  since_checkpoint: Annotated[bool, typer.Option(
                      "--since-checkpoint", help="recompute hashes only after the checkpoint of the last clean "
                      "verify (whose entry must still have its hash); the other checks stay complete")] = False):
    """Check every ledger invariant; exit 1 naming the first broken entry. A clean run saves a checkpoint."""
    from jifen.db import run_in_transaction, utcnow
    from jifen.ledger.models import ChainHead
    from jifen.ledger.verify import Problem, save_checkpoints, verify_ledger
    from jifen.programs.service import get_program

    with sessions(read_only=True)() as s:
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("verifying hash chains", total=None)
            report = verify_ledger(s, lambda done, total: bar.update(task, completed=done, total=total),
                                   processes=processes or os.cpu_count() or 1, since_checkpoint=since_checkpoint)
        problems: list[Problem | str] = list(report.problems)
        if expect_head:
            head = s.get(ChainHead, get_program(s, program).id)
            if not head or not head.hash.startswith(expect_head):
                problems.append(f"[chain] head of {program!r} is {head and head.hash}, not {expect_head}")
    if problems:
        for p in problems[1:20]:
            err.print(f"  also: {p}", markup=False, highlight=False)
        fail(f"ledger broken at {problems[0]}")
    run_in_transaction(sessions(), lambda s: save_checkpoints(s, report.ends, utcnow()))
    entries = sum(seq for seq, _ in report.ends.values())
    chain = (f"hash chain intact ({report.checked} entries after the checkpoints re-hashed)" if since_checkpoint
             else "hash chain intact")
    out.print(f"ledger OK: {entries} entries; postings balance, balances = postings = lots, {chain}")

@ledger_app.command("audit")
def ledger_audit():
    """Verify the audit log's hash chain (every write by an API key or console session)."""
    from jifen.security.audit import AuditEntry, verify

    with sessions()() as s:
        problems = verify(s)
        lines = s.scalar(select(func.count()).select_from(AuditEntry))
    if problems:
        fail(f"audit log broken: {problems[0]}")
    out.print(f"audit log OK: {lines} lines, hash chain intact")

@ledger_app.command("head")
def ledger_head(program: ProgramOpt = "default"):
    """Print the chain head (seq and hash) to publish for later `verify --expect-head`."""
    from jifen.ledger.models import ChainHead
    from jifen.programs.service import get_program

    with sessions()() as s:
        head = s.get(ChainHead, get_program(s, program).id)
        out.print(f"{program} seq={head.seq} hash={head.hash}")

@ledger_app.command("jobs")
def ledger_jobs():
    """Run the background jobs now: stale holds, pending points, expiry, tier evaluations due."""
    from jifen.jobs import run_all

    report = run_all(sessions())
    out.print(f"holds released: {report.holds_released}; members settled: {report.members}; "
              f"entries written: {report.entries}; tier evaluations: {report.tier_evaluations}; "
              f"expiry reminders: {report.reminders}; notifications delivered: {report.notifications}")
