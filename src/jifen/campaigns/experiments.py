"""A/B/n experiments: deterministic assignment (the audience's stable hash puts a member in the holdout
or not; a second hash of the key and the member id picks the arm by weight), results per arm with each
arm compared with the first (the control) by analytics/stats.py, and the plan before it starts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.analytics import stats
from jifen.campaigns import measure
from jifen.campaigns.models import Experiment
from jifen.campaigns.schemas import ExperimentIn, PlanIn
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.lazy import lazy_import
from jifen.programs.models import Program
from jifen.rules.audience import Audience, bucket

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")

HOLDOUT = "holdout"


def create(session: Session, program: Program, body: ExperimentIn, *, now: dt.datetime, actor: str | None) -> Experiment:
    if session.scalar(select(Experiment.id).where(Experiment.program_id == program.id, Experiment.key == body.key)):
        raise Conflict(f"experiment {body.key!r} exists", code="experiment_exists")
    aud = Audience(key=f"experiment:{body.key}", **body.target.model_dump(), holdout=body.holdout)
    e = Experiment(program_id=program.id, key=body.key, name=body.name,
                   arms=[a.model_dump(mode="json") for a in body.arms], audience=aud.model_dump(mode="json"),
                   metric=body.metric, starts_at=body.starts_at, ends_at=body.ends_at, created_by=actor, created_at=now)
    session.add(e)
    session.flush()
    return e


def get(session: Session, program_id: int, key: str) -> Experiment:
    found = session.scalar(select(Experiment).where(Experiment.program_id == program_id, Experiment.key == key))
    if found is None:
        raise NotFound(f"no experiment {key!r}", code="unknown_experiment")
    return found


def listing(session: Session, program_id: int) -> list[Experiment]:
    return list(session.scalars(select(Experiment).where(Experiment.program_id == program_id)
                                .order_by(Experiment.id.desc())))


def view(e: Experiment) -> dict:
    aud = Audience.model_validate(e.audience)
    return {"key": e.key, "name": e.name, "arms": e.arms,
            "target": {"tiers": aud.tiers, "segments": aud.segments, "tags": aud.tags, "lists": aud.lists},
            "holdout": str(aud.holdout), "metric": e.metric, "starts_at": e.starts_at.isoformat(),
            "ends_at": e.ends_at.isoformat()}


def assign(e: Experiment, member_id: str, tier: str | None, attributes: dict | None) -> str | None:
    """The member's arm, "holdout", or None (outside the experiment's target). Same answer every time."""
    group = Audience.model_validate(e.audience).group(member_id, tier, attributes)
    if group != "treated":
        return HOLDOUT if group == "holdout" else None
    weights = [Decimal(str(a["weight"])) for a in e.arms]
    point = Decimal(repr(bucket(f"experiment-arm:{e.key}", member_id))) * sum(weights)
    for arm, w in zip(e.arms, weights, strict=True):
        if point < w:
            return arm["name"]
        point -= w
    return e.arms[-1]["name"]


def results(session: Session, program: Program, e: Experiment, now: dt.datetime) -> dict:
    """Per group: members, conversion (≥ 1 purchase), spend per member, redemption (≥ 1 order); each arm and
    the holdout against the control (the first arm), with 95% intervals and p-values."""
    start, end = e.starts_at, min(e.ends_at, max(now, e.starts_at))
    members = measure.population(session, program, lambda mid, tier, attrs: assign(e, mid, tier, attrs))
    data = measure.behaviour(session, program, members, start, end)
    names = [a["name"] for a in e.arms] + [HOLDOUT]
    by = {g: data.filter(pl.col("group") == g) for g in names}
    metrics = {g: {"members": f.height, "conversion": _rate(f, "purchases"),
                   "spend": round(float(f["spend"].sum()) / f.height, 2), "redemption": _rate(f, "redemptions")}
               for g, f in by.items() if f.height}
    control = by[names[0]]
    comparisons = []
    for g in names[1:]:
        f = by[g]
        if f.height < 2 or control.height < 2:
            continue
        comparisons.append({"group": g, "against": names[0],
                            "conversion": _proportions(f, control, "purchases"),
                            "spend": stats.compare_means(f["spend"].to_list(), control["spend"].to_list()).view(),
                            "redemption": _proportions(f, control, "redemptions")})
    return {"experiment": view(e), "groups": {g: f.height for g, f in by.items()}, "metrics": metrics,
            "comparisons": comparisons}


def _rate(f: pl.DataFrame, column: str) -> float:
    return round(f.filter(pl.col(column) > 0).height / f.height, 4) if f.height else 0.0


def _proportions(f: pl.DataFrame, control: pl.DataFrame, column: str) -> dict:
    return stats.compare_proportions(f.filter(pl.col(column) > 0).height, f.height,
                                     control.filter(pl.col(column) > 0).height, control.height).view()


def plan(body: PlanIn) -> dict:
    """Members per arm for the lift wanted, or the lift (minimum detectable effect) a size can detect."""
    try:
        if body.metric == "conversion":
            n = body.members_per_arm or stats.sample_size_proportion(body.baseline, body.lift or 0, body.alpha, body.power)
            lift = body.lift if body.lift is not None else stats.mde_proportion(body.baseline, n, body.alpha, body.power)
        else:
            sd = body.sd or 0.0
            n = body.members_per_arm or stats.sample_size_mean(sd, body.lift or 0, body.alpha, body.power)
            lift = body.lift if body.lift is not None else stats.mde_mean(sd, n, body.alpha, body.power)
    except ValueError as exc:
        raise InvalidRequest(str(exc), code="invalid_plan") from None
    return {"metric": body.metric, "members_per_arm": n, "lift": round(lift, 6), "alpha": body.alpha, "power": body.power}
