"""Member-facing pages, no sign-in: the programme's rules in force and the changes announced ahead
(seed 000: a regulator fined a platform for changing points rules with less than 30 days' notice)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from jifen.db import utcnow
from jifen.programs import tiers
from jifen.programs.service import get_program
from jifen.rules.service import changes, in_force, versions
from jifen.web.console import render

router = APIRouter(include_in_schema=False)


@router.get("/p/{code}/rules")
def published_rules(request: Request, code: str):
    with request.app.state.read_sessions() as session:
        program = get_program(session, code)
        now = utcnow()
        live = in_force(session, program, now)
        announced, previous = [], live
        for v in versions(session, program):
            if v.effective_from > now:
                announced.append((v, changes(program, previous, v), (v.effective_from - now).days))
                previous = v
        return render(request, "public_rules.html", program=program, live=live, announced=announced,
                      ladder=tiers.tier_config(program), tz=program.timezone,
                      per_yuan=int(1 / program.point_value) if program.point_value else None)


