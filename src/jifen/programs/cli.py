"""`jifen program` and `jifen tiers`: a programme's configuration as one YAML file; the tier evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from jifen.clikit import ProgramOpt, out, sessions
from jifen.db import run_in_transaction, utcnow

program_app = typer.Typer(help="Programmes: settings, tiers and rules as one YAML file.", no_args_is_help=True)
tiers_app = typer.Typer(help="Tiers: the periodic evaluation.", no_args_is_help=True)


@program_app.command("apply")
def program_apply(file: Annotated[Path, typer.Argument(help="programme YAML (see programs/examples)")]):
    """Create or update a programme from YAML; all or nothing; rules become a new version if changed."""
    from jifen.programs.config import load_yaml
    from jifen.programs.service import apply_config

    cfg = load_yaml(file)
    done = run_in_transaction(sessions(), lambda s: apply_config(s, cfg, now=utcnow(), actor=f"cli:{file.name}"))
    version = f"rules version {done['rule_version']}" if done["rule_version"] else "rules unchanged"
    out.print(f"programme {done['program']} {'created' if done['created'] else 'updated'}; {version}")


@program_app.command("show")
def program_show(program: ProgramOpt = "default"):
    """A programme's settings, tier ladder and rules in force, as JSON."""
    from jifen.programs.service import get_program
    from jifen.rules.api import program_view, version_view
    from jifen.rules.service import in_force

    with sessions()() as s:
        prog = get_program(s, program)
        live = in_force(s, prog, utcnow())
        print(json.dumps({**program_view(prog), "rules_in_force": version_view(live) if live else None},
                         ensure_ascii=False, indent=2))


@tiers_app.command("evaluate")
def tiers_evaluate(program: ProgramOpt = "default"):
    """The periodic evaluation: upgrades, grace for members below retention, downgrades after grace."""
    from jifen.programs import tiers
    from jifen.programs.service import get_program

    r = run_in_transaction(sessions(), lambda s: tiers.evaluate(s, get_program(s, program), utcnow()))
    out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in r.items()))
