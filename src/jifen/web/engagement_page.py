"""The console's engagement page: tasks with their completions, check-in streaks, referrals, red packets and
gifts, teams (analytics/engagement.py, read afresh each visit), and the one operator action the service layer
has for them — a task switched on or off (engagement/tasks.set_active) — for roles that manage tasks, as the
API (mall:manage creates them there): CSRF-checked, done once, a refusal shown with nothing changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from jifen.analytics import engagement
from jifen.db import utcnow
from jifen.engagement import tasks
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import SignedIn, allowed, render
from jifen.web.forms import done_of, submit

router = APIRouter(prefix="/console", include_in_schema=False)
TaskManager = Annotated[Principal, allowed("mall:manage", write=True)]
DONE = ("task_on", "task_off")


def _page(request: Request, who: Principal, status: int = 200, error: str | None = None):
    with request.app.state.read_sessions() as s:
        program, now = s.get(Program, who.program_id), utcnow()
        return render(request, "engagement.html", status=status, who=who, tz=program.timezone,
                      tasks=engagement.task_table(s, program, now), check_ins=engagement.check_in_figures(s, program, now),
                      referrals=engagement.referral_figures(s, program, now), gifts=engagement.gift_figures(s, program),
                      teams=engagement.team_table(s, program, now), recent=engagement.RECENT_DAYS,
                      manages=who.may("mall:manage"), error=error, done=done_of(request, DONE))


@router.get("/engagement")
def engagement_page(request: Request, who: SignedIn):
    return _page(request, who)


@router.post("/engagement/tasks/{code}/{state}")
def switch_task(request: Request, code: str, state: str, who: TaskManager, once: Annotated[str, Form()] = ""):
    if state not in ("on", "off"):
        return _page(request, who, status=404, error=f"unknown state {state!r}: on or off")
    error = submit(request, who, once, f"tasks.{state}:{code}", {},
                   lambda sc: tasks.set_active(sc.session, sc.program, code, state == "on"))
    if error is None:
        return RedirectResponse(f"/console/engagement?done=task_{state}", status_code=303)
    return _page(request, who, status=422, error=error)
