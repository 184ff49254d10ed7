"""`jifen rules`: versions, what-ifs over stored events, corrections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from jifen.clikit import ProgramOpt, out, period, sessions
from jifen.db import run_in_transaction, utcnow

rules_app = typer.Typer(help="Earning rules: versions, simulation, corrections.", no_args_is_help=True)
FromOpt = Annotated[str, typer.Option("--from", help="first day (YYYY-MM-DD, programme time) or ISO date-time")]
ToOpt = Annotated[str, typer.Option("--to", help="last day, included (YYYY-MM-DD) or ISO date-time, excluded")]


@rules_app.command("versions")
def rules_versions(program: ProgramOpt = "default"):
    """Every version of a programme's rules and when it took (or takes) effect."""
    from jifen.programs.service import get_program
    from jifen.rules.service import versions

    with sessions()() as s:
        prog = get_program(s, program)
        tz, now = ZoneInfo(prog.timezone), utcnow()
        table = Table(title=f"rule versions of {prog.code} ({prog.timezone})")
        for col in ("version", "effective from", "rules", "state", "note"):
            table.add_column(col)
        for v in versions(s, prog):
            state = "announced" if v.effective_from > now else ""
            table.add_row(str(v.version), f"{v.effective_from.astimezone(tz):%Y-%m-%d %H:%M}",
                          str(len(v.document.get("rules", []))), state, v.note or "")
        out.print(table)


@rules_app.command("simulate")
def rules_simulate(draft: Annotated[Path, typer.Argument(help="YAML with the draft rules (a `rules:` block or a "
                                                         "whole programme file)")],
                   start: FromOpt, end: ToOpt, program: ProgramOpt = "default",
                   as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False):
    """Replay stored events under draft rules: points and ¥ liability beside the rules in force."""
    from jifen.flows.replay import simulate
    from jifen.programs.config import load_rules_yaml
    from jifen.programs.service import get_program

    doc = load_rules_yaml(draft)
    with sessions()() as s:
        prog = get_program(s, program)
        lo, hi = period(prog.timezone, start, end)
        report = simulate(s, prog, doc, lo, hi)
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    p, y = report["points"], report["liability_yuan"]
    out.print(f"{report['events']} events from {start} to {end}; members affected: {report['members_affected']}")
    table = Table()
    for col in ("", "rules in force", "draft", "difference"):
        table.add_column(col, justify="right")
    table.add_row("points", f"{p['baseline']:,}", f"{p['draft']:,}", f"{p['difference']:+,}")
    table.add_row("liability ¥", y["baseline"], y["draft"], y["difference"])
    out.print(table)
    rules = Table(title="rules with the largest difference")
    for col in ("rule", "in force", "draft", "difference"):
        rules.add_column(col, justify="right")
    for r in report["top_rules"]:
        rules.add_row(r["rule"], f"{r['baseline']:,}", f"{r['draft']:,}", f"{r['difference']:+,}")
    out.print(rules)


@rules_app.command("recompute")
def rules_recompute(start: FromOpt, end: ToOpt, program: ProgramOpt = "default",
                    apply: Annotated[bool, typer.Option("--apply", help="post the corrections (default: dry run)")]
                    = False):
    """Re-evaluate past events under the rules in force now; post differences as correcting entries."""
    from jifen.flows.replay import recompute
    from jifen.programs.service import get_program

    def work(s):
        prog = get_program(s, program)
        lo, hi = period(prog.timezone, start, end)
        return recompute(s, prog, lo, hi, now=utcnow(), actor="cli:recompute", apply=apply)

    r = run_in_transaction(sessions(), work)
    verb = "corrected" if apply else "would correct (dry run; --apply to post)"
    out.print(f"{r['events']} events re-evaluated under rules v{r.get('rule_version')}; {verb} "
              f"{r['corrected_events']} events of {r.get('members_affected', 0)} members: "
              f"+{r['points_added']:,} / -{r['points_removed']:,} points")
