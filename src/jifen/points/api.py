"""The points API (the ledger's HTTP face; the ledger itself knows no HTTP): award, spend, transfer, adjust,
reverse, freeze, holds; entries by id."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from jifen.apikit import Key, NoBody, member, scope, write
from jifen.approvals import service as approvals
from jifen.approvals.models import AdjustmentRequest
from jifen.flows import points
from jifen.ledger import operations as ops
from jifen.ledger.schemas import AdjustIn, AwardIn, FreezeIn, HoldIn, ReverseIn, SpendIn, TransferIn
from jifen.ledger.views import entry_view, hold_view
from jifen.openapi import errors
from jifen.security.deps import require
from jifen.security.service import Principal
from jifen.strict import Strict

# Every points route names a member, an entry or a hold that may not exist.
router = APIRouter(prefix="/v1", tags=["points"], responses=errors(404))
Writer = Annotated[Principal, Depends(require("points:write"))]
Corrector = Annotated[Principal, Depends(require("points:correct"))]
Reader = Annotated[Principal, Depends(require("ledger:read"))]


@router.post("/points/award", summary="Award points (available now, or pending until a date)")
def award(body: AwardIn, request: Request, who: Writer, key: Key) -> JSONResponse:
    return write(request, who, key, "points.award", body, lambda sc: entry_view(sc.session, points.award(
        sc, member(sc, body.member_id), body.points, occurred_at=body.occurred_at, expires_at=body.expires_at,
        pending_until=body.pending_until, reference=body.reference, reason=body.reason)))


@router.post("/points/spend", summary="Spend points, earliest-expiring lots first (risk-scored: a spend in review is "
             "a hold until decided)")
def spend(body: SpendIn, request: Request, who: Writer, key: Key) -> JSONResponse:
    return write(request, who, key, "points.spend", body, lambda sc: points.spend(
        sc, member(sc, body.member_id), body.points, reference=body.reference, reason=body.reason,
        device_id=body.device_id, ip=body.ip))


@router.post("/points/transfer", summary="Give points to another member (the expiry dates travel along)")
def transfer(body: TransferIn, request: Request, who: Writer, key: Key) -> JSONResponse:
    return write(request, who, key, "points.transfer", body, lambda sc: entry_view(sc.session, points.transfer(
        sc, member(sc, body.from_member_id), member(sc, body.to_member_id), body.points,
        reference=body.reference, reason=body.reason)))


class PendingAdjustment(Strict):
    status: Literal["pending_approval"]
    approval_id: int = Field(description="the request a person with points:approve approves or rejects "
                                          "(console: Approvals)")
    member_id: str
    points: int
    threshold: int = Field(description="the programme's risk.adjust_approval_above")


@router.post("/points/adjust", summary="Manual adjustment (reason required, actor recorded); above the programme's "
             "approval threshold it waits for a second person (202)",
             responses={202: {"model": PendingAdjustment, "description": "More points than risk.adjust_approval_above "
                              "(either sign): nothing posted yet; a pending request for another person to decide"}})
def adjust(body: AdjustIn, request: Request, who: Corrector, key: Key) -> JSONResponse:
    def work(sc):
        done = approvals.adjust_or_request(sc, member(sc, body.member_id), body.points, body.reason, who,
                                           reference=body.reference)
        if isinstance(done, AdjustmentRequest):
            return {"status": "pending_approval", "approval_id": done.id, "member_id": body.member_id,
                    "points": done.points, "threshold": approvals.threshold(sc.program)}
        return entry_view(sc.session, done)

    answer = write(request, who, key, "points.adjust", body, work)
    if json.loads(bytes(answer.body)).get("status") == "pending_approval":  # (a replay answers as the first time did)
        answer.status_code = 202
    return answer


@router.post("/points/reverse", summary="Reverse an entry in full or in part (proportionally)")
def reverse(body: ReverseIn, request: Request, who: Corrector, key: Key) -> JSONResponse:
    return write(request, who, key, "points.reverse", body, lambda sc: entry_view(sc.session, ops.reverse(
        sc, body.entry_id, body.points, reason=body.reason)))


@router.post("/points/freeze", summary="Freeze available points (risk)")
def freeze(body: FreezeIn, request: Request, who: Corrector, key: Key) -> JSONResponse:
    return write(request, who, key, "points.freeze", body, lambda sc: entry_view(sc.session, ops.freeze(
        sc, member(sc, body.member_id), body.points, reason=body.reason)))


@router.post("/points/unfreeze", summary="Return frozen points to available")
def unfreeze(body: FreezeIn, request: Request, who: Corrector, key: Key) -> JSONResponse:
    return write(request, who, key, "points.unfreeze", body, lambda sc: entry_view(sc.session, ops.unfreeze(
        sc, member(sc, body.member_id), body.points, reason=body.reason)))


@router.post("/holds", status_code=201, summary="Reserve points for an order (two-phase spend)")
def create_hold(body: HoldIn, request: Request, who: Writer, key: Key) -> JSONResponse:
    return write(request, who, key, "holds.create", body, lambda sc: hold_view(sc.session, points.hold(
        sc, member(sc, body.member_id), body.points, reference=body.reference, expires_at=body.expires_at)),
        status=201)



@router.post("/holds/{hold_id}/capture", summary="Capture a hold: the points are spent")
def capture(hold_id: int, request: Request, who: Writer, key: Key) -> JSONResponse:
    return write(request, who, key, f"holds.capture:{hold_id}", NoBody(),
                 lambda sc: hold_view(sc.session, ops.capture(sc, hold_id)))


@router.post("/holds/{hold_id}/release", summary="Release a hold: the points return to the member")
def release(hold_id: int, request: Request, who: Writer, key: Key) -> JSONResponse:
    return write(request, who, key, f"holds.release:{hold_id}", NoBody(),
                 lambda sc: hold_view(sc.session, ops.release(sc, hold_id)))


@router.get("/holds/{hold_id}", summary="A hold and its state", response_model=None)
def show_hold(hold_id: int, request: Request, who: Reader) -> dict[str, Any]:
    with request.app.state.read_sessions() as session:
        return hold_view(session, ops.get_hold(scope(session, who), hold_id))


@router.get("/entries/{entry_id}", summary="A journal entry with its postings and lots", response_model=None)
def show_entry(entry_id: int, request: Request, who: Reader) -> dict[str, Any]:
    with request.app.state.read_sessions() as session:
        return entry_view(session, ops.get_entry(scope(session, who), entry_id))
