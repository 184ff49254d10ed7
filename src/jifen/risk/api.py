"""Risk control API: the review queue and its decisions, blacklists and freezes with appeal."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy import select

from jifen.apikit import Key, Scope, write
from jifen.db import utcnow
from jifen.errors import NotFound
from jifen.flows import review
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.programs.models import Program
from jifen.risk import cases, restrictions, scan
from jifen.risk.models import MemberRestriction
from jifen.risk.scoring import risk_config
from jifen.security.deps import require
from jifen.security.service import Principal
from jifen.strict import Strict

router = APIRouter(prefix="/v1", tags=["risk"])
Reader = Annotated[Principal, Depends(require("risk:read"))]
Reviewer = Annotated[Principal, Depends(require("risk:review"))]
MemberReader = Annotated[Principal, Depends(require("members:read"))]
Appellant = Annotated[Principal, Depends(require("members:write"))]  # customer service, or the member's own token


class DecisionIn(Strict):
    reason: str = Field(min_length=1, max_length=1000)


class RestrictionIn(Strict):
    kind: Literal["blacklist", "freeze"]
    days: int | None = Field(None, ge=1, le=3660, description="a blacklist is permanent, a freeze 90 days, unless given")
    permanent: bool = False
    reason: str = Field(min_length=1, max_length=500)


class AppealIn(Strict):
    text: str = Field(min_length=1, max_length=2000)


@router.get("/risk/cases", summary="The review queue: cases by status (open first come first)")
def list_cases(request: Request, who: Reader, status: Literal["open", "approved", "rejected", "all"] = "open",
               after: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 100):
    with request.app.state.read_sessions() as s:
        return cases.list_cases(s, who.program_id, None if status == "all" else status, limit, after)


@router.get("/risk/cases/{case_id}", summary="A case: score, reasons, what it holds, the decision")
def show_case(case_id: int, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        case = cases.get_case(s, who.program_id, case_id)
        return cases.view(case, s.get(Member, case.member_pk).member_id)


def _decision(decision: str):
    def endpoint(case_id: int, body: DecisionIn, request: Request, who: Reviewer, key: Key):
        def work(sc: Scope) -> dict:
            case = review.decide(sc, cases.get_case(sc.session, sc.program.id, case_id), decision, body.reason)
            return cases.view(case, sc.session.get_one(Member, case.member_pk).member_id)

        return write(request, who, key, f"risk.{decision}:{case_id}", body, work)

    endpoint.__name__ = f"{decision}_case"
    return endpoint


router.post("/risk/cases/{case_id}/approve", summary="Approve: held points unfrozen, the order goes on")(
    _decision("approve"))
router.post("/risk/cases/{case_id}/reject", summary="Reject: frozen points reversed, the order cancelled")(
    _decision("reject"))
router.post("/risk/cases/{case_id}/freeze-member", summary="Reject, and freeze the member (90 days by default)")(
    _decision("freeze_member"))


def _member_restriction(s, program_id: int, member_id: str, restriction_id: int) -> tuple[Member, MemberRestriction]:
    member = get_member(s, s.get(Program, program_id), member_id)
    r = restrictions.get(s, program_id, restriction_id)
    if r.member_pk != member.id:
        raise NotFound(f"no restriction {restriction_id} for member {member_id!r}", code="unknown_restriction")
    return member, r


@router.post("/members/{member_id}/restrictions", status_code=201,
             summary="Blacklist (permanent) or freeze (90 days) a member: no earning, spending or giving")
def impose(member_id: str, body: RestrictionIn, request: Request, who: Reviewer, key: Key):
    def work(sc: Scope) -> dict:
        member = get_member(sc.session, sc.program, member_id)
        days = None if body.permanent else body.days or (
            risk_config(sc.program).freeze_days if body.kind == "freeze" else None)
        r = restrictions.impose(sc.session, member, body.kind, days=days, reason=body.reason, actor=sc.actor,
                                now=sc.now)
        return restrictions.view(r, member.member_id, sc.now)

    return write(request, who, key, f"risk.restrict:{member_id}", body, work, status=201)


@router.get("/members/{member_id}/restrictions", summary="A member's blacklistings and freezes (their own, too)")
def member_restrictions(member_id: str, request: Request, who: MemberReader):
    with request.app.state.read_sessions() as s:
        member, now = get_member(s, s.get(Program, who.program_id), member_id), utcnow()
        return [restrictions.view(r, member_id, now) for r in s.scalars(
            select(MemberRestriction).where(MemberRestriction.member_pk == member.id).order_by(MemberRestriction.id))]


def _appeal(request: Request, who: Principal, key: str, restriction_id: int, body: AppealIn, member_id: str | None):
    def work(sc: Scope) -> dict:
        if member_id is not None:
            member, r = _member_restriction(sc.session, sc.program.id, member_id, restriction_id)
        else:
            r = restrictions.get(sc.session, sc.program.id, restriction_id)
            member = sc.session.get_one(Member, r.member_pk)
        return restrictions.view(restrictions.appeal(r, body.text, sc.now), member.member_id, sc.now)

    return write(request, who, key, f"risk.appeal:{restriction_id}", body, work)


@router.post("/members/{member_id}/restrictions/{restriction_id}/appeal",
             summary="Appeal a restriction (the member's own token may): it stays in force until decided")
def member_appeal(member_id: str, restriction_id: int, body: AppealIn, request: Request, who: Appellant, key: Key):
    return _appeal(request, who, key, restriction_id, body, member_id)


@router.post("/restrictions/{restriction_id}/appeal", summary="Appeal a restriction on a member's behalf")
def appeal(restriction_id: int, body: AppealIn, request: Request, who: Appellant, key: Key):
    return _appeal(request, who, key, restriction_id, body, None)


@router.post("/restrictions/{restriction_id}/lift", summary="Lift a restriction (an appeal upheld, or a mistake)")
def lift(restriction_id: int, body: DecisionIn, request: Request, who: Reviewer, key: Key):
    def work(sc: Scope) -> dict:
        r = restrictions.lift(restrictions.get(sc.session, sc.program.id, restriction_id), body.reason, sc.actor, sc.now)
        return restrictions.view(r, sc.session.get_one(Member, r.member_pk).member_id, sc.now)

    return write(request, who, key, f"risk.lift:{restriction_id}", body, work)


@router.get("/risk/scan", summary="Scan the account graph: shared devices / IPs, referral rings, shared addresses")
def scan_graph(request: Request, who: Reader, days: Annotated[int | None, Query(ge=1, le=3660)] = None):
    with request.app.state.read_sessions() as s:
        since = utcnow() - dt.timedelta(days=days) if days else None
        return {"findings": scan.as_dicts(scan.scan(s, s.get(Program, who.program_id), since))}
