"""The console's points-mall page: the catalogue with prices now, stock and sales; the latest orders. For
roles with mall:manage (as the API): a reward added, edited, its stock changed; an order fulfilled, cancelled,
refunded, or — held by a risk rule — approved or rejected. Through the mall's service, like the API; every
form CSRF-checked and done once (web/forms.py); a refusal is shown on the page with nothing changed."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select

from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.flows.pricing import pricer
from jifen.ledger.operations import Scope
from jifen.mall import live, service
from jifen.mall.api import RewardIn
from jifen.mall.models import KINDS, Redemption, Reward
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import SignedIn, allowed, render
from jifen.web.forms import done_of, submit, whole

router = APIRouter(prefix="/console", include_in_schema=False)
Manager = Annotated[Principal, allowed("mall:manage", write=True)]
Text = Annotated[str, Form()]
# What an order in each state may become (mall/service.py enforces it; the page offers only these).
NEXT = {"held": ("fulfil", "cancel"), "fulfilled": ("refund",), "review": ("approve", "reject")}
TRANSITIONS = {"fulfil": service.fulfil, "cancel": service.cancel, "refund": service.refund,
               "approve": service.approve, "reject": service.reject}
POLL_SECONDS = 5  # how often the mall page asks for the stock left
DONE = ("reward_created", "reward_saved", "stock_changed", *(f"order_{step}" for step in TRANSITIONS))


def _page(request: Request, who: Principal, status: int = 200, error: str | None = None, form: dict | None = None):
    with request.app.state.read_sessions() as s:
        program, now = s.get(Program, who.program_id), utcnow()
        rewards = list(s.scalars(select(Reward).where(Reward.program_id == program.id)
                                 .order_by(Reward.category, Reward.points)))
        price_of = pricer(s, program, None, now)  # the catalogue price: no member, no campaign offer
        orders = s.execute(select(Redemption, Member.member_id, Reward.name)
                           .join(Member, Member.id == Redemption.member_pk)
                           .join(Reward, Reward.id == Redemption.reward_id)
                           .where(Redemption.program_id == program.id)
                           .order_by(Redemption.id.desc()).limit(30)).all()
        return render(request, "mall.html", status=status, who=who, tz=program.timezone, orders=orders,
                      rewards=[(r, price_of(r).points) for r in rewards], kinds=KINDS, next_steps=NEXT,
                      flash=[(r, price_of(r).points) for r in live.flash_sales(s, program, now)],
                      lotteries=live.lotteries(s, program), poll_seconds=POLL_SECONDS,
                      manages=who.may("mall:manage"), error=error, form=form or {},
                      done=done_of(request, DONE))


@router.get("/mall")
def mall(request: Request, who: SignedIn):
    return _page(request, who)


@router.get("/mall/stock.json")
def stock(request: Request, who: SignedIn):
    """Flash sales' and lottery prizes' stock now, polled by the mall page (never cached: it is live)."""
    with request.app.state.read_sessions() as s:
        figures = live.stock_now(s, s.get(Program, who.program_id), utcnow())
    return JSONResponse(figures, headers={"Cache-Control": "no-store"})


def _outcome(request: Request, who: Principal, done: str, error: str | None, form: dict | None = None):
    if error is None:
        return RedirectResponse(f"/console/mall?done={done}", status_code=303)
    return _page(request, who, status=422, error=error, form=form)


def _money(text: str, label: str) -> Decimal:
    try:
        return Decimal((text or "0").strip())
    except InvalidOperation:
        raise InvalidRequest(f"{label} must be an amount in ¥, not {text!r}", code="invalid_number") from None


def _reward_fields(code: str, name: str, kind: str, category: str, points: str, stock: str, value: str) -> dict:
    """The form as the API's RewardIn would take it: the same checks, the same messages."""
    try:
        body = RewardIn(code=code.strip(), name=name.strip(), kind=kind, category=category.strip(),
                        points=whole(points, "points"), value=_money(value, "value"),
                        stock=whole(stock, "stock") if stock.strip() else None)  # blank: unlimited
    except ValidationError as exc:
        raise InvalidRequest("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()),
                             code="invalid_reward") from None
    return body.model_dump()


def _reward(sc: Scope, code: str) -> Reward:
    return service.get_reward(sc.session, sc.program, code)


@router.post("/mall/rewards")
def create_reward(request: Request, who: Manager, code: Text = "", name: Text = "", kind: Text = "",
                  category: Text = "", points: Text = "", stock: Text = "", value: Text = "", once: Text = ""):
    form = {"code": code, "name": name, "kind": kind, "category": category, "points": points, "stock": stock,
            "value": value}
    error = submit(request, who, once, "rewards.create", form, lambda sc: service.add_reward(
        sc.session, sc.program.id, _reward_fields(code, name, kind, category, points, stock, value), sc.now))
    return _outcome(request, who, "reward_created", error, form)


@router.post("/mall/rewards/{code}/edit")
def edit_reward(request: Request, code: str, who: Manager, name: Text = "", points: Text = "", active: Text = "",
                once: Text = ""):
    error = submit(request, who, once, f"rewards.edit:{code}", {"name": name, "points": points, "active": active},
                   lambda sc: service.edit_reward(_reward(sc, code), name=name, points=whole(points, "points"),
                                                  active=active == "on"))
    return _outcome(request, who, "reward_saved", error)


@router.post("/mall/rewards/{code}/stock")
def change_stock(request: Request, code: str, who: Manager, delta: Text = "", once: Text = ""):
    error = submit(request, who, once, f"rewards.stock:{code}", {"delta": delta},
                   lambda sc: service.change_stock(sc.session, _reward(sc, code), whole(delta, "stock change")))
    return _outcome(request, who, "stock_changed", error)


@router.post("/mall/orders/{redemption_id}/{step}")
def order_step(request: Request, redemption_id: int, step: str, who: Manager, once: Text = ""):
    def work(sc: Scope):
        if step not in TRANSITIONS:
            raise InvalidRequest(f"unknown step {step!r}", code="invalid_step")
        return TRANSITIONS[step](sc, service.get_redemption(sc.session, sc.program, redemption_id))

    return _outcome(request, who, "order_" + step, submit(request, who, once, f"redemptions.{step}:{redemption_id}",
                                                          {}, work))
