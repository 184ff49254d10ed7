"""The member centre's points mall: the catalogue as this member may redeem it, a confirmation step, the
redemption through the mall's flow (flows/redeem.py, as POST /v1/redemptions), and the member's orders."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from jifen.campaigns import service as campaigns
from jifen.db import utcnow
from jifen.errors import JifenError
from jifen.flows.pricing import pricer
from jifen.flows.redeem import redeem
from jifen.ledger.views import balance_view
from jifen.mall import service as mall
from jifen.mall.api import redemption_view
from jifen.mall.models import Redemption, Reward
from jifen.programs.service import get_wallet
from jifen.web.member_centre import Actor, FormKey, Visitor, act, member_of, page, problem_page

router = APIRouter(prefix="/m", include_in_schema=False)
SORTS = {"popular": (Reward.sold.desc(), Reward.id), "points": (Reward.points, Reward.id),
         "newest": (Reward.created_at.desc(), Reward.id.desc())}


def _why_not(program, reward, member, now) -> str | None:
    try:
        mall.check_eligible(program, reward, member, now)
        return None
    except JifenError as exc:
        return exc.code


@router.get("/mall")
def catalogue(request: Request, who: Visitor, category: str = "", sort: Literal["popular", "points", "newest"] = "popular"):
    with request.app.state.read_sessions() as s:
        (program, member), now = member_of(s, who), utcnow()
        query = select(Reward).where(Reward.program_id == program.id, Reward.active.is_(True))
        if category:
            query = query.where((Reward.category == category) | Reward.category.startswith(category + "/"))
        price_of = pricer(s, program, member, now)  # with the member's double-value campaign, if any
        rewards = [(r, price_of(r), _why_not(program, r, member, now)) for r in s.scalars(query.order_by(*SORTS[sort]))]
        tops = sorted({c.split("/")[0] for c in s.scalars(select(Reward.category).where(
            Reward.program_id == program.id, Reward.active.is_(True)).distinct()) if c})
        available = balance_view(s, program, get_wallet(s, program, None), member, now)["available"]
        return page(request, "m/mall.html", who, rewards=rewards, categories=tops, category=category, sort=sort,
                    sorts=list(SORTS), available=available)


@router.get("/mall/{code}")
def confirm(request: Request, code: str, who: Visitor):
    """The confirmation step: the price now, the balance after, an address for goods that ship."""
    with request.app.state.read_sessions() as s:
        (program, member), now = member_of(s, who), utcnow()
        try:
            reward = mall.get_reward(s, program, code)
        except JifenError as exc:
            return problem_page(request, exc)
        available = balance_view(s, program, get_wallet(s, program, None), member, now)["available"]
        return page(request, "m/confirm.html", who, reward=reward, price=pricer(s, program, member, now)(reward),
                    available=available, why_not=_why_not(program, reward, member, now))


@router.post("/mall/{code}")
def place(request: Request, code: str, who: Actor, key: FormKey, recipient: Annotated[str, Form(max_length=50)] = "",
          phone: Annotated[str, Form(max_length=30)] = "", line: Annotated[str, Form(max_length=300)] = ""):
    address = {"name": recipient, "phone": phone, "line": line} if line.strip() else None
    # The API's operation and body: a replay of either answers alike.
    payload = {"member_id": who.member_id, "reward": code, "quantity": 1, "address": address, "pay": "points",
               "device_id": None, "ip": None}
    done = act(request, who, key, "redemptions.create", payload, lambda sc, member: redemption_view(
        sc.session, redeem(sc, member, mall.get_reward(sc.session, sc.program, code), 1, address)))
    if not isinstance(done, dict):
        return done
    return RedirectResponse(f"/m/orders/{done['id']}", status_code=303)


@router.get("/orders")
def orders(request: Request, who: Visitor):
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        rows = s.execute(select(Redemption, Reward.name).join(Reward, Reward.id == Redemption.reward_id)
                         .where(Redemption.member_pk == member.id).order_by(Redemption.id.desc()).limit(50)).all()
        return page(request, "m/orders.html", who, orders=rows, tz=program.timezone)


@router.get("/orders/{order_id}")
def order(request: Request, order_id: int, who: Visitor):
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        try:
            found = mall.get_redemption(s, program, order_id)
            if found.member_pk != member.id:  # another member's order is not there, as far as this one can tell
                raise JifenError(f"no redemption {order_id}", code="not_found", status=404)
        except JifenError as exc:
            return problem_page(request, exc)
        campaign = campaigns.get(s, program.id, found.campaign).name if found.campaign else None
        return page(request, "m/order.html", who, o=redemption_view(s, found), reward=s.get(Reward, found.reward_id),
                    campaign_name=campaign, tz=program.timezone)
