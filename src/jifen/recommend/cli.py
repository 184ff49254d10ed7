"""`jifen recommend`: a member's recommendations, and the evaluation on a held-out period."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from jifen.clikit import ProgramOpt, fail, out, sessions
from jifen.db import utcnow
from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

recommend_app = typer.Typer(help="Reward recommendations.", no_args_is_help=True)


@recommend_app.command("evaluate")
def recommend_evaluate(k: Annotated[int, typer.Option(min=1, max=20, help="suggestions per member")] = 3,
                       holdout_days: Annotated[int, typer.Option(min=1, max=365, help="the held-out period: "
                                                                 "the last N days of history")] = 30,
                       program: ProgramOpt = "default",
                       as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False):
    """Precision@k and hit rate on the last N days' redemptions (trained on what came before), beside the
    popularity baselines."""
    from jifen.programs.service import get_program
    from jifen.recommend import evaluate, history

    with sessions()() as s:
        h = history.load(s, get_program(s, program))
    if not h.redeemed.any():
        fail("no redemptions yet: nothing to evaluate on")
    end = h.when[h.redeemed].max() + np.timedelta64(1, "us")
    cutoff = end - np.timedelta64(holdout_days, "D")
    if not (h.redeemed & (h.when < cutoff)).any():
        fail(f"no redemptions before the last {holdout_days} days: nothing to learn from")
    report = evaluate.evaluate(h, cutoff, end, k)
    report["held_out"] = {"from": str(cutoff), "to": str(end)}
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"held out: {report['redemptions']} redemptions by {report['members']} members after "
                        f"{str(cutoff)[:10]} (k = {k})")
    for col in ("method", f"precision@{k}", "hit rate"):
        table.add_column(col)
    for name, m in report["methods"].items():
        table.add_row(name, f"{m['precision_at_k']:.3f}", f"{m['hit_rate']:.3f}")
    out.print(table)
    took = "its first suggestion" if k == 1 else f"one of its {k} suggestions"
    out.print(f"seed 003 aims at 70 %: {report['methods']['model']['hit_rate']:.0%} of the members took {took}",
              highlight=False)


@recommend_app.command("member")
def recommend_member(member_id: str, k: Annotated[int, typer.Option(min=1, max=20)] = 5,
                     expiring_days: Annotated[int, typer.Option(min=1, max=366)] = 30,
                     program: ProgramOpt = "default"):
    """A member's recommendations (JSON), with what their expiring points can buy."""
    from jifen.members.service import get_member
    from jifen.programs.service import get_program
    from jifen.recommend import service

    now = utcnow()
    with sessions()() as s:
        prog = get_program(s, program)
        member = get_member(s, prog, member_id)
        picks = service.recommend(s, prog, member, now, k=20)
        offer = service.expiring_offer(s, prog, member, now, expiring_days, picks)
    print(json.dumps({"member_id": member_id, "rewards": picks[:k], "expiring": offer}, ensure_ascii=False, indent=2))
