"""The console's automations page: each automation (trigger, condition, actions, last run) and the latest
runs; a run's page lists whom it matched and what was sent or given."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from jifen.automations.models import Automation, AutomationAction, AutomationRun
from jifen.db import owned
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.web.console import SignedIn, render

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/automations")
def automations(request: Request, who: SignedIn):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        autos = list(s.scalars(select(Automation).where(Automation.program_id == program.id).order_by(Automation.code)))
        runs = s.execute(select(AutomationRun, Automation.code).join(Automation, Automation.id == AutomationRun.automation_id)
                         .where(AutomationRun.program_id == program.id).order_by(AutomationRun.id.desc()).limit(30)).all()
        return render(request, "automations.html", who=who, tz=program.timezone, automations=autos, runs=runs)


@router.get("/automations/runs/{run_id}")
def automation_run(run_id: int, request: Request, who: SignedIn):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        run = owned(s, AutomationRun, run_id, program.id, "automation run", "unknown_run")
        code = s.get_one(Automation, run.automation_id).code
        rows = s.execute(select(AutomationAction, Member.member_id).join(Member, Member.id == AutomationAction.member_pk)
                         .where(AutomationAction.run_id == run.id).order_by(AutomationAction.id).limit(200)).all()
        return render(request, "automation_run.html", who=who, tz=program.timezone, run=run, code=code, rows=rows)
