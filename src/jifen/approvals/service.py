"""Maker-checker for manual adjustments: above the programme's threshold (`risk.adjust_approval_above`)
an adjustment becomes a pending request; another person with points:approve approves it (the adjustment
posts, once) or rejects it (nothing posts). The decision is a conditional UPDATE from pending, so two
checkers at once, or one clicking twice, decide once."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import CursorResult, select, update

from jifen.approvals.models import AdjustmentRequest
from jifen.db import owned
from jifen.errors import Conflict, Forbidden, InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.config import RiskConfig
from jifen.programs.models import Program, Wallet
from jifen.security.service import Principal


def threshold(program: Program) -> int | None:
    return RiskConfig.model_validate(program.risk or {}).adjust_approval_above


def needs_approval(program: Program, points: int) -> bool:
    limit = threshold(program)
    return limit is not None and abs(points) > limit


def request_adjustment(sc: ops.Scope, member: Member, points: int, reason: str, maker: Principal) -> AdjustmentRequest:
    """A pending request, checked as the adjustment itself would be (the points, a reason)."""
    ops.check_points(points, allow_negative=True)
    if not reason.strip():
        raise InvalidRequest("an adjustment needs a reason", code="reason_required")
    req = AdjustmentRequest(program_id=sc.program.id, member_pk=member.id, wallet_id=sc.wallet.id, points=points,
                            reason=reason.strip()[:500], status="pending", maker=maker.actor,
                            maker_user_id=maker.user_id, created_at=sc.now)
    sc.session.add(req)
    sc.session.flush()
    return req


def adjust_or_request(sc: ops.Scope, member: Member, points: int, reason: str, maker: Principal,
                      reference: str | None = None) -> JournalEntry | AdjustmentRequest:
    """A manual adjustment as every face makes it (the console's member page, POST /v1/points/adjust): posted
    at once, or a pending request when it moves more points than the programme's threshold."""
    if needs_approval(sc.program, points):
        return request_adjustment(sc, member, points, reason, maker)
    return ops.adjust(sc, member, points, reason=reason.strip(), reference=reference)


def get_request(sc: ops.Scope, request_id: int) -> AdjustmentRequest:
    return owned(sc.session, AdjustmentRequest, request_id, sc.program.id, "adjustment request", "unknown_request")


def _decide(sc: ops.Scope, req: AdjustmentRequest, checker: Principal, to: str) -> None:
    if checker.actor == req.maker or (checker.user_id is not None and checker.user_id == req.maker_user_id):
        raise Forbidden("the maker of a request cannot decide it: another person must", code="own_request")
    decided = sc.session.execute(update(AdjustmentRequest).where(
        AdjustmentRequest.id == req.id, AdjustmentRequest.status == "pending").values(
        status=to, checker=checker.actor, decided_at=sc.now))
    if not isinstance(decided, CursorResult) or decided.rowcount != 1:
        sc.session.refresh(req)
        raise Conflict(f"request {req.id} was already {req.status}", code="already_decided")
    sc.session.refresh(req)


def approve(sc: ops.Scope, req: AdjustmentRequest, checker: Principal) -> AdjustmentRequest:
    """The adjustment posts now, in the approval's transaction, in the request's wallet; the entry's actor is
    the checker and its reference the request (which names the maker)."""
    _decide(sc, req, checker, "approved")
    member = sc.session.get_one(Member, req.member_pk)
    in_wallet = replace(sc, wallet=sc.session.get_one(Wallet, req.wallet_id))
    entry = ops.adjust(in_wallet, member, req.points, reason=req.reason, reference=f"approval:{req.id}")
    req.entry_id = entry.id
    return req


def reject(sc: ops.Scope, req: AdjustmentRequest, checker: Principal) -> AdjustmentRequest:
    _decide(sc, req, checker, "rejected")
    return req


def pending_for(session, member: Member) -> list[AdjustmentRequest]:
    return list(session.scalars(select(AdjustmentRequest).where(
        AdjustmentRequest.member_pk == member.id, AdjustmentRequest.status == "pending").order_by(AdjustmentRequest.id)))
