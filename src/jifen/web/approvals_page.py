"""The console's adjustment approvals (maker-checker, approvals/service.py): requests waiting, with
approve and reject for a role with points:approve — never on a request of one's own — and the recent
decisions. Every decision is a CSRF-checked form, done once (web/forms.py) and audited under the member
it concerns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from jifen.approvals import service as approvals
from jifen.approvals.models import AdjustmentRequest
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import Refused, SignedIn, allowed, render
from jifen.web.forms import done_of, submit

router = APIRouter(prefix="/console", include_in_schema=False)
Checker = Annotated[Principal, allowed("points:approve", write=True)]
HERE = "/console/approvals"


def _rows(s, program_id: int, pending: bool) -> list[tuple[AdjustmentRequest, str]]:
    q = (select(AdjustmentRequest, Member.member_id).join(Member, Member.id == AdjustmentRequest.member_pk)
         .where(AdjustmentRequest.program_id == program_id))
    q = (q.where(AdjustmentRequest.status == "pending").order_by(AdjustmentRequest.id) if pending
         else q.where(AdjustmentRequest.status != "pending").order_by(AdjustmentRequest.decided_at.desc()).limit(30))
    return [(r, mid) for r, mid in s.execute(q)]


def _page(request: Request, who: Principal, status: int = 200, error: str | None = None):
    if not (who.may("points:approve") or who.may("points:correct")):  # checkers, and makers following theirs
        raise Refused("forbidden", who)
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        return render(request, "approvals.html", status=status, who=who, pending=_rows(s, program.id, True),
                      decided=_rows(s, program.id, False), threshold=approvals.threshold(program),
                      tz=program.timezone, error=error, done=done_of(request, ("approved", "rejected")))


@router.get("/approvals")
def approval_list(request: Request, who: SignedIn):
    return _page(request, who)


def _decision(name: str, done: str, decide):
    def endpoint(request: Request, request_id: int, who: Checker, once: Annotated[str, Form()] = ""):
        def work(sc):
            req = approvals.get_request(sc, request_id)
            request.state.audit_member = sc.session.get_one(Member, req.member_pk).member_id  # the audit line's member
            decide(sc, req, who)

        error = submit(request, who, once, f"{name}:{request_id}", {"request": request_id}, work)
        if error:
            return _page(request, who, status=409, error=error)
        return RedirectResponse(f"{HERE}?done={done}", status_code=303)

    endpoint.__name__ = f"{name}_request"
    return endpoint


router.post("/approvals/{request_id}/approve")(_decision("approve", "approved", approvals.approve))
router.post("/approvals/{request_id}/reject")(_decision("reject", "rejected", approvals.reject))
