"""The console's campaigns page (營銷活動): each campaign with its report (cost, budget, participants,
incremental purchases and spend against the holdout, ROI), each experiment with its results, each bandit's
arms. Read through the same functions as the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from jifen.campaigns import bandit, experiments, report, service
from jifen.db import utcnow
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import allowed, render

router = APIRouter(prefix="/console", include_in_schema=False)
Reader = Annotated[Principal, allowed("reports:read")]


@router.get("/campaigns")
def campaigns(request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        program, now = s.get_one(Program, who.program_id), utcnow()
        reports = [report.report(s, program, c, now) for c in service.listing(s, program.id)]
        results = [experiments.results(s, program, e, now) for e in experiments.listing(s, program.id)]
        bandits = [bandit.summary(k, bandit.arms(s, program.id, k)) for k in bandit.keys(s, program.id)]
        return render(request, "campaigns.html", who=who, tz=program.timezone, reports=reports, results=results,
                      bandits=bandits)
