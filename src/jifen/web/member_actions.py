"""The member page's actions: adjust points (a reason always), freeze and unfreeze points, blacklist or
freeze the member. Through the same ledger operations and restriction functions as the API, for the same
roles (points:correct, risk:review); every form CSRF-checked, done once (web/forms.py) and audited like
every console write. A refusal is shown on the member page, with nothing changed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from jifen.approvals import service as approvals
from jifen.approvals.models import AdjustmentRequest
from jifen.errors import InvalidRequest
from jifen.ledger import operations as ops
from jifen.members.service import get_member
from jifen.programs.models import Program
from jifen.risk import restrictions
from jifen.security.service import Principal
from jifen.web.console import allowed, member_page
from jifen.web.forms import submit, whole

router = APIRouter(prefix="/console", include_in_schema=False)
Corrector = Annotated[Principal, allowed("points:correct", write=True)]
Reviewer = Annotated[Principal, allowed("risk:review", write=True)]
Text = Annotated[str, Form()]


def _outcome(request: Request, who: Principal, member_id: str, done: str, error: str | None, form: dict):
    """Back to the member page: with what was done, or (422) with the refusal and the form as it was sent."""
    if error is None:
        return RedirectResponse(f"/console/members/{member_id}?done={done}", status_code=303)
    with request.app.state.read_sessions() as s:
        program = s.get(Program, who.program_id)
        return member_page(request, who, s, program, get_member(s, program, member_id), status=422,
                            error=error, form=form)


def _member(sc: ops.Scope, member_id: str):
    return get_member(sc.session, sc.program, member_id)


@router.post("/members/{member_id}/adjust")
def adjust(request: Request, member_id: str, who: Corrector, points: Text = "", reason: Text = "", once: Text = ""):
    """Posts at once, or — more points than the programme's threshold — waits for a second person."""
    form, requested = {"points": points, "reason": reason}, []

    def work(sc: ops.Scope):
        done = approvals.adjust_or_request(sc, _member(sc, member_id), whole(points, "points"), reason, who)
        if isinstance(done, AdjustmentRequest):
            requested.append(done)

    error = submit(request, who, once, f"adjust:{member_id}", form, work)
    return _outcome(request, who, member_id, "adjust_requested" if requested else "adjust", error, form)


def _set_aside(operation):
    def endpoint(request: Request, member_id: str, who: Corrector, points: Text = "", reason: Text = "",
                 once: Text = ""):
        form = {"points": points, "reason": reason}

        def work(sc: ops.Scope):
            if not reason.strip():
                raise InvalidRequest("a reason is needed", code="reason_required")
            # An empty amount: all the member's available (freeze) or frozen (unfreeze) points.
            amount = whole(points, "points", blank=0) or None
            return operation(sc, _member(sc, member_id), amount, reason=reason.strip())

        error = submit(request, who, once, f"{operation.__name__}:{member_id}", form, work)
        return _outcome(request, who, member_id, operation.__name__, error, form)

    endpoint.__name__ = operation.__name__
    return endpoint


router.post("/members/{member_id}/freeze")(_set_aside(ops.freeze))
router.post("/members/{member_id}/unfreeze")(_set_aside(ops.unfreeze))


@router.post("/members/{member_id}/restrict")
def restrict(request: Request, member_id: str, who: Reviewer, kind: Text = "", days: Text = "", reason: Text = "",
             once: Text = ""):
    form = {"kind": kind, "days": days, "reason": reason}
    error = submit(request, who, once, f"restrict:{member_id}", form, lambda sc: restrictions.impose(
        sc.session, _member(sc, member_id), kind, days=whole(days, "days", blank=0, minimum=0) or None, reason=reason,
        actor=sc.actor, now=sc.now))
    return _outcome(request, who, member_id, "restrict", error, form)
