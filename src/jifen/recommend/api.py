"""GET /v1/members/{member_id}/recommendations: the rewards a member is likeliest to redeem, and what their
expiring points can buy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from jifen.db import utcnow
from jifen.members.service import get_member
from jifen.programs.models import Program
from jifen.recommend import service
from jifen.security.deps import require
from jifen.security.service import Principal

router = APIRouter(prefix="/v1", tags=["recommendations"])
Reader = Annotated[Principal, Depends(require("members:read"))]


class Pick(BaseModel):
    reward: str
    name: str
    points: int
    value: str
    category: str
    affordable: bool
    score: float


class ExpiringOffer(BaseModel):
    points: int
    date: str
    reward: Pick | None
    message: str


class Recommendations(BaseModel):
    member_id: str
    rewards: list[Pick]
    expiring: ExpiringOffer | None


@router.get("/members/{member_id}/recommendations", response_model=Recommendations,
            summary="Rewards the member is likely to redeem, and what their points expiring soon can buy")
def get_recommendations(member_id: str, request: Request, who: Reader,
                        k: Annotated[int, Query(ge=1, le=20)] = 5,
                        expiring_days: Annotated[int, Query(ge=1, le=366)] = 30):
    now = utcnow()
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        member = get_member(s, program, member_id)
        picks = service.recommend(s, program, member, now, k=max(k, 20))
        return {"member_id": member.member_id, "rewards": picks[:k],
                "expiring": service.expiring_offer(s, program, member, now, expiring_days, picks)}
