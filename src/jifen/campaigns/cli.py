"""`jifen campaign` and `jifen experiment`: campaigns from a YAML file, their rollout and report; A/B/n
experiments, their plan and results; the bandit simulation."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import yaml
from pydantic import BaseModel, ValidationError

from jifen.clikit import ProgramOpt, fail, out, sessions
from jifen.db import run_in_transaction, utcnow

campaign_app = typer.Typer(help="Campaigns: target, budget, co-funding, rollout, holdout, report.", no_args_is_help=True)
experiment_app = typer.Typer(help="A/B/n experiments and bandits.", no_args_is_help=True)
M = TypeVar("M", bound=BaseModel)
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def _load(model: type[M], file: Path) -> M:
    try:
        return model.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{file}: {exc}".splitlines()[0])
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{file}: {'.'.join(str(p) for p in first['loc']) or 'document'}: {first['msg']}")


def _print(data, as_json: bool, lines) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        for line in lines(data):
            out.print(line, markup=False, highlight=False)


def _write(program: str, act):
    from jifen.programs.service import get_program

    return run_in_transaction(sessions(), lambda s: act(s, get_program(s, program)))


@campaign_app.command("create")
def campaign_create(file: Annotated[Path, typer.Argument(help="YAML of the campaign (the body of POST /v1/campaigns)")],
                    program: ProgramOpt = "default", launch: Annotated[bool, typer.Option(help="launch it too")] = False):
    """Create a campaign (a draft), and launch it with --launch."""
    from jifen.campaigns import service
    from jifen.campaigns.schemas import CampaignIn

    body = _load(CampaignIn, file)

    def act(s, prog):
        c = service.create(s, prog, body, now=utcnow(), actor="cli")
        return service.view(service.launch(s, prog, c, now=utcnow(), actor="cli") if launch else c)

    out.print(f"campaign {body.code}: {_write(program, act)['status']}")


@campaign_app.command("launch")
def campaign_launch(code: str, program: ProgramOpt = "default"):
    """Publish the campaign's rule and budget in a new rule version, effective now."""
    from jifen.campaigns import service

    _write(program, lambda s, p: service.launch(s, p, service.get(s, p.id, code), now=utcnow(), actor="cli"))
    out.print(f"campaign {code}: live")


@campaign_app.command("rollout")
def campaign_rollout(code: str, share: Annotated[str, typer.Argument(help="share of the target reached, 0 to 1")],
                     program: ProgramOpt = "default"):
    """A gradual-rollout (灰度) step: the share of the target the campaign reaches."""
    from jifen.campaigns import service
    from jifen.campaigns.schemas import CampaignChange

    try:
        change = CampaignChange(rollout=Decimal(share))
    except (InvalidOperation, ValidationError):
        fail(f"share must be a number from 0 to 1, not {share!r}")
    _write(program, lambda s, p: service.change(s, p, service.get(s, p.id, code), change, now=utcnow(), actor="cli"))
    out.print(f"campaign {code}: rollout {share}")


@campaign_app.command("stop")
def campaign_stop(code: str, program: ProgramOpt = "default"):
    """End the campaign: its rule withdrawn from a new rule version, effective now."""
    from jifen.campaigns import service

    _write(program, lambda s, p: service.stop(s, p, service.get(s, p.id, code), now=utcnow(), actor="cli"))
    out.print(f"campaign {code}: ended")


@campaign_app.command("list")
def campaign_list(program: ProgramOpt = "default", as_json: AsJson = False):
    from jifen.campaigns import service
    from jifen.programs.service import get_program

    with sessions(read_only=True)() as s:
        rows = [service.view(c) for c in service.listing(s, get_program(s, program).id)]
    _print(rows, as_json, lambda rows: [f"{c['code']}\t{c['status']}\t{c['name']}\trollout {c['rollout']}"
                                        f"\tholdout {c['holdout']}\tbudget {c['budget']}" for c in rows])


@campaign_app.command("report")
def campaign_report(code: str, program: ProgramOpt = "default", as_json: AsJson = False):
    """Cost, budget, participants, incremental purchases and spend against the holdout (95% CI), ROI."""
    from jifen.campaigns import report, service
    from jifen.programs.service import get_program

    with sessions(read_only=True)() as s:
        prog = get_program(s, program)
        data = report.report(s, prog, service.get(s, prog.id, code), utcnow())

    def lines(r):
        cost, inc = r["cost"], r["incremental"]
        yield f"{r['campaign']['name']} ({r['campaign']['status']}) {r['period']['from']} → {r['period']['to']}"
        yield (f"points {cost['points']} (¥{cost['liability_yuan']}); sponsor {cost['sponsor'] or '—'} "
               f"{cost['sponsored_points']} (¥{cost['sponsored_yuan']})")
        if cost["discounted_orders"]:
            yield f"points saved in the mall {cost['points_saved']} on {cost['discounted_orders']} order(s)"
        yield f"budget used {r['budget']['used']} of {r['budget']['points']}"
        yield f"participants {r['participants']}; reached {r['groups']['treated']}, holdout {r['groups']['holdout']}"
        for metric in ("purchases", "spend"):
            m = inc[metric]
            yield f"incremental {metric}: " + (f"{m['total']} (95% CI {m['low']} … {m['high']}, p {m['per_member']['p_value']})"
                                               if m else "— (needs a holdout)")
        yield f"ROI {r['roi']['value']} (95% CI {r['roi']['low']} … {r['roi']['high']})"

    _print(data, as_json, lines)


@experiment_app.command("create")
def experiment_create(file: Annotated[Path, typer.Argument(help="YAML of the experiment (POST /v1/experiments)")],
                      program: ProgramOpt = "default"):
    from jifen.campaigns import experiments
    from jifen.campaigns.schemas import ExperimentIn

    body = _load(ExperimentIn, file)
    _write(program, lambda s, p: experiments.create(s, p, body, now=utcnow(), actor="cli"))
    out.print(f"experiment {body.key}: {', '.join(a.name for a in body.arms)}")


@experiment_app.command("results")
def experiment_results(key: str, program: ProgramOpt = "default", as_json: AsJson = False):
    """Conversion, spend and redemption per arm, each against the control with 95% CI and p-value."""
    from jifen.campaigns import experiments
    from jifen.programs.service import get_program

    with sessions(read_only=True)() as s:
        prog = get_program(s, program)
        data = experiments.results(s, prog, experiments.get(s, prog.id, key), utcnow())

    def lines(r):
        for g, m in r["metrics"].items():
            yield f"{g}: {m['members']} members, conversion {m['conversion']}, spend {m['spend']}, redemption {m['redemption']}"
        for c in r["comparisons"]:
            for metric in ("conversion", "spend", "redemption"):
                x = c[metric]
                yield (f"{c['group']} vs {c['against']} {metric}: {x['difference']} (95% CI {x['low']} … {x['high']}, "
                       f"p {x['p_value']})")

    _print(data, as_json, lines)


@experiment_app.command("plan")
def experiment_plan(baseline: Annotated[float, typer.Option(help="control conversion rate, or mean spend")],
                    lift: Annotated[float | None, typer.Option(help="the change to detect")] = None,
                    members: Annotated[int | None, typer.Option(help="members per arm (gives the MDE)")] = None,
                    sd: Annotated[float | None, typer.Option(help="spend's standard deviation (spend)")] = None,
                    metric: Annotated[str, typer.Option(help="conversion or spend")] = "conversion"):
    """Members per arm for a lift, or the minimum detectable effect of a size (alpha 0.05, power 0.8)."""
    from jifen.campaigns import experiments
    from jifen.campaigns.schemas import PlanIn

    try:
        body = PlanIn.model_validate({"baseline": baseline, "lift": lift, "members_per_arm": members, "sd": sd,
                                      "metric": metric})
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"])
    plan = experiments.plan(body)
    out.print(f"{plan['members_per_arm']} members per arm detect a {metric} change of {plan['lift']}")


@experiment_app.command("bandit-simulate")
def bandit_simulate(rates: Annotated[str, typer.Option(help="true conversion rates, comma-separated")],
                    rounds: int = 10_000, seed: int = 0, as_json: AsJson = False):
    """Thompson sampling against known rates: pulls per arm, convergence, regret."""
    from jifen.campaigns import bandit

    try:
        values = [float(r) for r in rates.split(",")]
    except ValueError:
        fail(f"--rates are numbers separated by commas, not {rates!r}")
    if len(values) < 2 or any(not 0 <= v <= 1 for v in values) or rounds < 1:
        fail("give at least two rates between 0 and 1, and rounds ≥ 1")
    sim = bandit.simulate(values, rounds, seed)
    _print(sim, as_json, lambda r: [f"pulls {r['pulls']}; best arm {r['best_arm']} has "
                                    f"{r['best_share_last_tenth']:.0%} of the last tenth; regret {r['regret']}",
                                    "regret by round: " + ", ".join(f"{int(p['round'])}:{p['regret']}"
                                                                    for p in r["regret_curve"])])
