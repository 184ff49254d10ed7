"""/v1/automations: define automations, run them (or a dry run), and read their runs' logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select

from jifen.apikit import Key, keyed
from jifen.automations import service
from jifen.automations.models import Automation, AutomationAction, AutomationRun
from jifen.automations.schemas import AutomationIn, AutomationOut, MatchOut, RunIn, RunOut
from jifen.db import owned, utcnow
from jifen.flows import automate
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.deps import require
from jifen.security.service import Principal

router = APIRouter(prefix="/v1", tags=["automations"])
Manager = Annotated[Principal, Depends(require("rules:write"))]
Reader = Annotated[Principal, Depends(require("rules:read"))]


@router.post("/automations", status_code=201, response_model=AutomationOut,
             summary="Create an automation, or replace the one with this code")
def save_automation(body: AutomationIn, request: Request, who: Manager, key: Key):
    return keyed(request, who, key, "automations.save", body,
                 lambda s: service.view(service.save(s, s.get_one(Program, who.program_id), body, utcnow())),
                 status=201)


@router.get("/automations", response_model=list[AutomationOut], summary="The programme's automations")
def list_automations(request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return [service.view(a) for a in s.scalars(select(Automation).where(
            Automation.program_id == who.program_id).order_by(Automation.code))]


@router.get("/automations/{code}", response_model=AutomationOut, summary="An automation")
def get_automation(code: str, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return service.view(service.get(s, who.program_id, code))


@router.post("/automations/{code}/run", response_model=RunOut,
             summary="Run now: who matches, and what is sent or given (a dry run changes nothing)")
def run_automation(code: str, body: RunIn, request: Request, who: Manager, key: Key):
    # Not through `keyed`: a run commits in batches of its own. A retried request is a new run that finds every
    # member already acted upon (each member's actions are keyed per automation and occurrence: never twice).
    with request.app.state.read_sessions() as s:
        service.get(s, who.program_id, code)  # 404 before anything else
    report = automate.run(request.app.state.sessions, who.program_id, code, utcnow(), actor=who.actor,
                          dry_run=body.dry_run)
    return JSONResponse(jsonable_encoder(RunOut.model_validate(report)), headers={"Idempotent-Replayed": "false"})


@router.get("/automations/{code}/runs", response_model=list[RunOut], summary="An automation's runs, newest first")
def list_runs(code: str, request: Request, who: Reader, limit: Annotated[int, Query(ge=1, le=200)] = 20):
    with request.app.state.read_sessions() as s:
        auto = service.get(s, who.program_id, code)
        runs = s.scalars(select(AutomationRun).where(AutomationRun.automation_id == auto.id)
                         .order_by(AutomationRun.id.desc()).limit(limit))
        return [run_view(r, code, []) for r in runs]


@router.get("/automation-runs/{run_id}", response_model=RunOut, summary="A run with who matched and what was done")
def get_run(run_id: int, request: Request, who: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500):
    with request.app.state.read_sessions() as s:
        r = owned(s, AutomationRun, run_id, who.program_id, "automation run", "unknown_run")
        auto = s.get_one(Automation, r.automation_id)
        rows = s.execute(select(AutomationAction, Member.member_id).join(Member, Member.id == AutomationAction.member_pk)
                         .where(AutomationAction.run_id == r.id).order_by(AutomationAction.id).limit(limit)).all()
        return run_view(r, auto.code, [MatchOut(member_id=mid, occurrence=a.occurrence, status=a.status,
                                                actions=a.done, error=a.error) for a, mid in rows])


def run_view(r: AutomationRun, code: str, members: list[MatchOut]) -> RunOut:
    return RunOut(run_id=r.id, automation=code, dry_run=False, cause=r.cause, started_at=r.started_at.isoformat(),
                  evaluated=r.evaluated, matched=r.matched, acted=r.acted, repeats=r.repeats, failed=r.failed,
                  errors=r.errors, members=members)
