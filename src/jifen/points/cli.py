"""`jifen ledger …`: check every invariant and the hash chains, publish the chain head, run the jobs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress
from sqlalchemy import func, select

from jifen.clikit import ProgramOpt, err, fail, out, sessions

ledger_app = typer.Typer(help="Ledger checks and jobs.", no_args_is_help=True)


@ledger_app.command("verify")
def ledger_verify(expect_head: Annotated[str | None, typer.Option(
        help="chain-head hash published earlier; also proves nothing was rewritten wholesale")] = None,
                  program: ProgramOpt = "default"):
    """Check every ledger invariant; exit 1 naming the first broken entry."""
    from jifen.ledger.models import ChainHead, JournalEntry
    from jifen.ledger.verify import Problem, verify
    from jifen.programs.service import get_program

    with sessions()() as s:
        total = s.scalar(select(func.count()).select_from(JournalEntry))
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("verifying hash chain", total=total)
            problems: list[Problem | str] = list(verify(s, progress=lambda n: bar.advance(task, n)))
        if expect_head:
            head = s.get(ChainHead, get_program(s, program).id)
            if not head or not head.hash.startswith(expect_head):
                problems.append(f"[chain] head of {program!r} is {head and head.hash}, not {expect_head}")
    if problems:
        for p in problems[1:20]:
            err.print(f"  also: {p}", markup=False, highlight=False)
        fail(f"ledger broken at {problems[0]}")
    out.print(f"ledger OK: {total} entries; postings balance, balances = postings = lots, hash chain intact")

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
