"""`jifen risk …`: the review queue from a terminal, the account-graph scan, training the anomaly model."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from jifen.clikit import ProgramOpt, err, out, sessions
from jifen.db import run_in_transaction, utcnow

risk_app = typer.Typer(help="Risk control: review queue, account-graph scan, anomaly model.", no_args_is_help=True)


@risk_app.command("cases")
def risk_cases(program: ProgramOpt = "default",
               status: Annotated[str, typer.Option(help="open, approved, rejected or all")] = "open",
               limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
               as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False):
    """The review queue: cases a risk rule sent to review or blocked."""
    from jifen.programs.service import get_program
    from jifen.risk.cases import STATUSES, list_cases

    if status not in (*STATUSES, "all"):
        raise typer.BadParameter(f"status is one of {', '.join(STATUSES)}, all")
    with sessions()() as s:
        rows = list_cases(s, get_program(s, program).id, None if status == "all" else status, limit)
    if as_json:
        for r in rows:
            out.print(json.dumps(r, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title=f"risk cases ({status}): {len(rows)}")
    for col in ("case", "member", "subject", "score", "action", "reasons", "status", "created"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["member_id"], f"{r['subject_kind']} {r['subject_id'] or ''}", str(r["score"]),
                      r["action"], ", ".join(x["code"] for x in r["reasons"]), r["status"], r["created_at"][:19])
    out.print(table)


@risk_app.command("train")
def risk_train(program: ProgramOpt = "default",
               days: Annotated[int, typer.Option(min=1, max=365, help="transactions of the last N days")] = 30,
               limit: Annotated[int, typer.Option(min=100, max=1_000_000, help="newest transactions used")] = 50_000):
    """Train the anomaly model on the programme's recent transactions; every process scores with it."""
    from jifen.programs.service import get_program
    from jifen.risk.anomaly import train

    model = run_in_transaction(sessions(), lambda s: train(s, get_program(s, program), utcnow(), days=days,
                                                            limit=limit))
    out.print(f"anomaly model {model.id} trained on {model.n_samples} transactions of the last {days} days "
              f"({', '.join(model.features)})")


@risk_app.command("scan")
def risk_scan(program: ProgramOpt = "default",
              days: Annotated[int | None, typer.Option(min=1, max=3660, help="only sightings, invitations and "
                                                                                "orders of the last N days")] = None,
              open_cases: Annotated[bool, typer.Option("--open-cases", help="put the findings' members in the review "
                                                                            "queue (as the hourly job does)")] = False,
              as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False):
    """Scan the account graph: shared devices / IPs, referral rings and clusters, shared delivery addresses."""
    import datetime as dt

    from jifen.programs.service import get_program
    from jifen.risk import scan

    now = utcnow()
    since = now - dt.timedelta(days=days) if days else None

    def work(s):
        prog = get_program(s, program)
        found = scan.scan(s, prog, since)
        return scan.as_dicts(found), scan.open_cases(s, prog, found, now) if open_cases else None

    findings, opened = run_in_transaction(sessions(), work)
    if as_json:
        for f in findings:
            out.print(json.dumps(f, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True)
    else:
        table = Table(title=f"risk scan: {len(findings)} findings")
        for col in ("kind", "shared", "members", "detail"):
            table.add_column(col)
        for f in findings:
            table.add_row(f["kind"], f["key"], ", ".join(f["members"]), json.dumps(f["detail"], ensure_ascii=False))
        out.print(table)
    if opened is not None:
        err.print(f"{opened} review case(s) opened")
