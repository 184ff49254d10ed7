"""`jifen automations`: save definitions from YAML, list them, run one (or a dry run), read the runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jifen.clikit import ProgramOpt, out, sessions
from jifen.db import run_in_transaction, utcnow

automations_app = typer.Typer(help="Marketing automations: trigger, condition, actions.", no_args_is_help=True)


@automations_app.command("save")
def automations_save(path: Annotated[Path, typer.Argument(help="YAML: one automation, or `automations:` a list")],
                     program: ProgramOpt = "default"):
    """Create the automations of the file, or replace those with the same codes (all or none)."""
    from jifen.automations import service
    from jifen.automations.schemas import AutomationIn
    from jifen.errors import InvalidRequest
    from jifen.programs.config import parse, read_yaml
    from jifen.programs.service import get_program

    data = read_yaml(path)
    items = data.get("automations") if isinstance(data, dict) and "automations" in data else [data]
    if not isinstance(items, list) or not items:
        raise InvalidRequest(f"{path}: expected an automation or `automations:` a list of them", code="invalid_config")
    bodies = [parse(AutomationIn, item) for item in items]
    now = utcnow()
    saved = run_in_transaction(sessions(), lambda s: [service.save(s, get_program(s, program), b, now).code
                                                      for b in bodies])
    out.print(f"saved {len(saved)} automation(s): {', '.join(saved)}")


@automations_app.command("list")
def automations_list(program: ProgramOpt = "default"):
    from sqlalchemy import select

    from jifen.automations.models import Automation
    from jifen.programs.service import get_program

    table = Table()
    for col in ("code", "name", "trigger", "condition", "actions", "repeat", "active", "last run"):
        table.add_column(col)
    with sessions()() as s:
        prog = get_program(s, program)
        for a in s.scalars(select(Automation).where(Automation.program_id == prog.id).order_by(Automation.code)):
            table.add_row(a.code, a.name, a.every and f"every {a.every}" or f"on {a.event_type}", a.condition,
                          ", ".join(x["type"] for x in a.actions), a.repeat, "yes" if a.active else "no",
                          a.last_run_at.isoformat(timespec="seconds") if a.last_run_at else "")
    out.print(table)


@automations_app.command("run")
def automations_run(code: str, dry_run: Annotated[bool, typer.Option(help="show who matches and what would be "
                                                                      "sent, changing nothing")] = False,
                    program: ProgramOpt = "default",
                    as_json: Annotated[bool, typer.Option("--json", help="print the whole report as JSON")] = False):
    """Run an automation now: who matched, and what was sent or given."""
    from jifen.automations import service
    from jifen.flows import automate
    from jifen.programs.service import get_program

    factory = sessions()
    with factory() as s:
        prog = get_program(s, program)
        service.get(s, prog.id, code)
        program_id = prog.id
    report = automate.run(factory, program_id, code, utcnow(), actor="cli", dry_run=dry_run)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{code}: {report['evaluated']:,} members checked, {report['matched']:,} matched, "
                        + (f"{report['repeats']:,} already reached (dry run)" if dry_run else
                           f"{report['acted']:,} acted upon, {report['repeats']:,} already, {report['failed']:,} failed"))
    for col in ("member", "status", "what"):
        table.add_column(col)
    for m in report["members"][:50]:
        table.add_row(m["member_id"], m["status"], m.get("error") or "; ".join(_said(a) for a in m["actions"]))
    out.print(table)
    for error in report["errors"]:
        out.print(f"condition error: {error}", markup=False)


def _said(action: dict) -> str:
    if action["type"] in ("message", "task"):
        return f"{'/'.join(action['channels'])}: {action['body']}"
    if action["type"] == "award":
        return f"+{action['points']} points"
    return f"coupon {action['reward']}"


@automations_app.command("runs")
def automations_runs(code: str, program: ProgramOpt = "default", limit: int = 20):
    """An automation's runs, newest first."""
    from sqlalchemy import select

    from jifen.automations import service
    from jifen.automations.models import AutomationRun
    from jifen.programs.service import get_program

    table = Table()
    for col in ("run", "cause", "started", "checked", "matched", "acted", "already", "failed"):
        table.add_column(col)
    with sessions()() as s:
        auto = service.get(s, get_program(s, program).id, code)
        for r in s.scalars(select(AutomationRun).where(AutomationRun.automation_id == auto.id)
                           .order_by(AutomationRun.id.desc()).limit(limit)):
            table.add_row(str(r.id), r.cause, r.started_at.isoformat(timespec="seconds"), str(r.evaluated),
                          str(r.matched), str(r.acted), str(r.repeats), str(r.failed))
    out.print(table)
