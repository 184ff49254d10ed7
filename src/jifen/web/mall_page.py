"""The console's points-mall page: the catalogue with prices now, stock and sales; the latest orders."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from jifen.db import utcnow
from jifen.mall.models import Redemption, Reward
from jifen.mall.service import unit_price
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.web.console import SignedIn, render

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/mall")
def mall(request: Request, who: SignedIn):
    with request.app.state.read_sessions() as s:
        program, now = s.get(Program, who.program_id), utcnow()
        rewards = list(s.scalars(select(Reward).where(Reward.program_id == program.id)
                                 .order_by(Reward.category, Reward.points)))
        orders = s.execute(select(Redemption, Member.member_id, Reward.name)
                           .join(Member, Member.id == Redemption.member_pk)
                           .join(Reward, Reward.id == Redemption.reward_id)
                           .where(Redemption.program_id == program.id)
                           .order_by(Redemption.id.desc()).limit(30)).all()
        return render(request, "mall.html", who=who, tz=program.timezone, orders=orders,
                      rewards=[(r, unit_price(program, r, now)[0]) for r in rewards])
