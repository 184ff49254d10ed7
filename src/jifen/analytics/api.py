"""Analytics API: KPIs for any period (optionally by tier or channel), RFM segments."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from jifen.analytics import economy, frames, kpis, rfm
from jifen.analytics.overview import wallet_figures
from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.programs.models import Program
from jifen.security.deps import require
from jifen.security.service import Principal

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
Reports = Annotated[Principal, Depends(require("reports:read"))]


@router.get("/kpis", summary="Points issued / redeemed / expired, rates, active members, breakage (docs/metrics.md)")
def get_kpis(request: Request, who: Reports, start: Annotated[dt.datetime, Query(alias="from")],
             end: Annotated[dt.datetime, Query(alias="to")], by: Literal["tier", "channel"] | None = None):
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise InvalidRequest("give from and to with a timezone, to after from", code="invalid_period")
    with request.app.state.read_sessions() as s:
        program = s.get(Program, who.program_id)
        data = frames.load(s, program)
        return {"from": start.isoformat(), "to": end.isoformat(), "rows": kpis.kpis(data, start, end,
                                                                                   program.point_value, by),
                "breakage": kpis.breakage(data), "repeat_purchase": kpis.repeat_purchase(data),
                "campaigns": kpis.campaigns(data, start, end, program.point_value),
                "funnel": kpis.funnel(data, start, end),
                "now": [{"wallet": w["wallet"].code, "outstanding": w["outstanding"], "liability_yuan": str(w["liability"])}
                        for w in (wallet_figures(s, program, wallet) for wallet in program.wallets)]}


@router.get("/rfm", summary="RFM segments (seed 001's thresholds): counts, and members of one segment")
def get_rfm(request: Request, who: Reports, segment: str | None = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    with request.app.state.read_sessions() as s:
        table = rfm.rfm(frames.load(s, s.get(Program, who.program_id)), utcnow())
    summary = {row["segment"]: row["len"] for row in table.group_by("segment").len().to_dicts()}
    members = table.filter(table["segment"] == segment).drop("member_pk").head(limit).to_dicts() if segment else []
    return {"segments": summary, "members": members}


@router.get("/economy", summary="Monthly issued vs redeemed with warnings, top rewards, cost per point, cohorts")
def get_economy(request: Request, who: Reports):
    with request.app.state.read_sessions() as s:
        program = s.get(Program, who.program_id)
        data = frames.load(s, program)
    return {"monthly": economy.monthly(data, program.timezone), "top_rewards": economy.top_rewards(data),
            "cost_per_point": economy.cost_per_point(data), "cohorts": economy.cohorts(data, program.timezone)}


@router.get("/lifecycle", summary="Members by lifecycle stage, and the members of one stage with churn risk")
def get_lifecycle(request: Request, who: Reports, stage: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    with request.app.state.read_sessions() as s:
        table = economy.lifecycle(frames.load(s, s.get(Program, who.program_id)), utcnow())
    counts = {row["stage"]: row["len"] for row in table.group_by("stage").len().to_dicts()}
    return {"stages": counts, "members": table.filter(table["stage"] == stage).head(limit).to_dicts() if stage else []}
