"""`jifen import balances FILE.csv`: a legacy programme's balances and lots into the ledger, then the diff."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jifen.clikit import ProgramOpt, Stages, err, out, sessions

import_app = typer.Typer(help="Bring in data from a legacy programme.", no_args_is_help=True)


@import_app.command("balances")
def import_balances(
        file: Annotated[Path, typer.Argument(help="CSV: member_id,balance[,points,earned_at,expires_at] "
                                                  "(docs/reliability.md)")],
        program: ProgramOpt = "default",
        wallet: Annotated[str | None, typer.Option(help="wallet code [default: the programme's default]")] = None,
        batch: Annotated[int, typer.Option(min=1, max=10_000, help="members per transaction")] = 1000,
        report: Annotated[Path | None, typer.Option(help="write the per-member diff here (CSV)")] = None,
        check: Annotated[bool, typer.Option("--check", help="only compare the file with the database")] = False):
    """Validate the whole file (a bad line: its number, nothing written), create missing members, write each
    balance through the ledger in batches (re-running resumes: members already imported are skipped), then
    report source against result; exit 2 if some member differs."""
    from jifen.db import utcnow
    from jifen.legacy.diff import diff
    from jifen.legacy.load import load
    from jifen.legacy.source import read_balances
    from jifen.programs.service import get_program, get_wallet

    now = utcnow()
    with sessions()() as s:
        prog = get_program(s, program)
        get_wallet(s, prog, wallet)
        members = read_balances(file, prog, now)
    if not check:
        with Stages() as stages:
            stages.start(f"importing the balances of {len(members):,} members, {batch:,} a transaction", len(members))
            done = load(sessions(), members, program=program, wallet=wallet, now=now, batch=batch,
                        progress=stages.update)
            stages.finish(f"{done.written:,} members written ({done.entries:,} entries, {done.points:,} points), "
                          f"{done.created:,} created, {done.skipped:,} already imported earlier")
    with sessions(read_only=True)() as s:
        result = diff(s, members, program=program, wallet=wallet)
    if report:
        result.write_csv(report)
    totals = result.totals()
    out.print(f"source: {totals['members']:,} members in {totals['rows']:,} rows, {totals['source_points']:,} points; "
              f"ledger: {totals['imported_points']:,} points imported, {totals['balance_points']:,} in their "
              f"balances; {totals['mismatches']:,} mismatches" + (f" (all in {report})" if report else ""),
              highlight=False, soft_wrap=True)
    for line in result.mismatches[:20]:
        err.print(f"  {line.status}: {line.member_id} source {line.source}, imported {line.imported}, "
                  f"balance {line.balance}", markup=False, highlight=False)
    if result.mismatches:
        raise typer.Exit(2)
