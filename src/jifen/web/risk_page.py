"""The console's risk page (風控): the review queue with its decisions, restrictions in force and appeals
(with lift), and the account-graph scan. Decisions go through the same functions as the API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from jifen.apikit import scope
from jifen.db import run_in_transaction, utcnow
from jifen.errors import JifenError
from jifen.flows import review
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.risk import cases, restrictions, scan
from jifen.risk.models import MemberRestriction
from jifen.security.service import PERMISSIONS, Principal
from jifen.web.console import allowed, render

router = APIRouter(prefix="/console", include_in_schema=False)
Reader = Annotated[Principal, allowed("risk:read")]
Reviewer = Annotated[Principal, allowed("risk:review", write=True)]


@router.get("/risk")
def risk(request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        program, now = s.get(Program, who.program_id), utcnow()
        rows = s.execute(select(MemberRestriction, Member.member_id).join(Member, Member.id == MemberRestriction.member_pk)
                         .where(MemberRestriction.program_id == program.id, MemberRestriction.status != "lifted")
                         .order_by(MemberRestriction.status, MemberRestriction.id.desc()).limit(100))
        in_force = [v for v in (restrictions.view(r, mid, now) for r, mid in rows) if v["in_force"]]
        return render(request, "risk.html", who=who, tz=program.timezone, open_cases=cases.list_cases(s, program.id),
                      decided=cases.recent_decisions(s, program.id), restrictions=in_force, findings=scan.scan(s, program),
                      can_review=who.role in PERMISSIONS["risk:review"],
                      done=request.query_params.get("done"), problem=request.query_params.get("error"))


def _back(**outcome: str) -> RedirectResponse:
    return RedirectResponse(f"/console/risk?{urlencode(outcome)}", status_code=303)


def _act(request: Request, who: Principal, work) -> RedirectResponse:
    """Run a decision; back to the page with what happened (or the refusal's message)."""
    try:
        run_in_transaction(request.app.state.sessions, lambda s: work(scope(s, who)))
    except JifenError as exc:
        return _back(error=exc.message)
    return _back(done="1")


@router.post("/risk/cases/{case_id}")
def decide(request: Request, case_id: int, who: Reviewer, decision: Annotated[str, Form()],
           note: Annotated[str, Form()] = ""):
    if decision not in cases.DECISIONS:
        return _back(error=f"unknown decision {decision!r}")
    return _act(request, who, lambda sc: review.decide(sc, cases.get_case(sc.session, who.program_id, case_id),
                                                      decision, note))


@router.post("/risk/restrictions/{restriction_id}/lift")
def lift(request: Request, restriction_id: int, who: Reviewer, note: Annotated[str, Form()] = ""):
    return _act(request, who, lambda sc: restrictions.lift(restrictions.get(sc.session, who.program_id, restriction_id),
                                                           note, who.actor, sc.now))
