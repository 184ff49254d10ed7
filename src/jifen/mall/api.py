"""Points mall API: rewards, redemption orders and their transitions, coupon write-off at the till."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from jifen.db import run_in_transaction, utcnow
from jifen.errors import Conflict, JifenError
from jifen.ledger.api import Key, member, write
from jifen.ledger.schemas import MemberId
from jifen.mall import service
from jifen.mall.models import KINDS, Coupon, Redemption, Reward
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.programs.models import Program
from jifen.rules.schema import CODE
from jifen.security.deps import require
from jifen.security.service import Principal

router = APIRouter(prefix="/v1", tags=["mall"])
Manager = Annotated[Principal, Depends(require("mall:manage"))]
Buyer = Annotated[Principal, Depends(require("points:write"))]
Reader = Annotated[Principal, Depends(require("members:read"))]
Till = Annotated[Principal, Depends(require("coupons:redeem"))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CouponTerms(Strict):
    threshold: Decimal = Field(ge=0)  # 滿 threshold 減 discount
    discount: Decimal = Field(gt=0)
    valid_days: int = Field(30, ge=1, le=3660)


class RewardIn(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    kind: Literal[KINDS]  # type: ignore[valid-type]
    category: str = Field("", max_length=200, pattern=r"^[^/]*(/[^/]+){0,2}$")
    points: int = Field(ge=1, le=10**9)
    stock: int | None = Field(None, ge=0)
    value: Decimal = Field(Decimal(0), ge=0)
    cost: Decimal = Field(Decimal(0), ge=0)
    supplier: str | None = None
    min_tier: str | None = None
    early_access_tier: str | None = None
    early_access_hours: int = Field(0, ge=0, le=24 * 30)
    per_member_limit: int | None = Field(None, ge=1)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    coupon: CouponTerms | None = None


class RedemptionIn(Strict):
    member_id: MemberId
    reward: str = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=100)
    address: dict | None = None


class WriteOffIn(Strict):
    merchant: str = Field(min_length=1, max_length=100)
    store: str | None = Field(None, max_length=100)


def reward_view(r: Reward) -> dict:
    return {"code": r.code, "name": r.name, "kind": r.kind, "category": r.category, "points": r.points,
            "stock": r.stock, "sold": r.sold, "value": str(r.value), "min_tier": r.min_tier,
            "per_member_limit": r.per_member_limit, "starts_at": r.starts_at.isoformat() if r.starts_at else None,
            "ends_at": r.ends_at.isoformat() if r.ends_at else None, "coupon": r.coupon or None}


def redemption_view(session, r: Redemption) -> dict:
    coupons = session.scalars(select(Coupon).where(Coupon.redemption_id == r.id).order_by(Coupon.code)).all()
    return {"id": r.id, "member_id": session.get(Member, r.member_pk).member_id,
            "reward": session.get(Reward, r.reward_id).code, "quantity": r.quantity, "points": r.points,
            "status": r.status, "hold_id": r.hold_id, "address": r.address or None,
            "coupons": [{"code": c.code, "status": c.status, "expires_at": c.expires_at.isoformat()} for c in coupons],
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}


def coupon_view(c: Coupon) -> dict:
    return {"code": c.code, "status": c.status, "merchant": c.merchant, "store": c.store,
            "used_at": c.used_at.isoformat() if c.used_at else None, "expires_at": c.expires_at.isoformat()}


@router.post("/rewards", status_code=201, summary="Add a reward to the catalogue")
def create_reward(body: RewardIn, request: Request, who: Manager):
    def tx(s):
        if s.scalar(select(Reward.id).where(Reward.program_id == who.program_id, Reward.code == body.code)):
            raise Conflict(f"reward {body.code!r} exists", code="reward_exists")
        data = body.model_dump(exclude={"coupon"})
        r = Reward(program_id=who.program_id, **data, coupon=body.coupon.model_dump(mode="json") if body.coupon else {},
                   sold=0, active=True, created_at=utcnow())
        s.add(r)
        s.flush()
        return reward_view(r)

    return run_in_transaction(request.app.state.sessions, tx)


@router.get("/rewards", summary="The catalogue: category prefix, keyword, sort; a member sees what they may redeem")
def list_rewards(request: Request, who: Reader, category: str | None = None, q: str | None = None,
                 sort: Literal["points", "newest", "popular"] = "popular", member_id: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50):
    with request.app.state.read_sessions() as s:
        program, now = s.get(Program, who.program_id), utcnow()
        query = select(Reward).where(Reward.program_id == program.id, Reward.active.is_(True))
        if category:
            query = query.where((Reward.category == category) | Reward.category.startswith(category + "/"))
        if q:
            query = query.where(Reward.name.contains(q) | Reward.code.contains(q))
        order = {"points": (Reward.points, Reward.id), "newest": (Reward.created_at.desc(), Reward.id.desc()),
                 "popular": (Reward.sold.desc(), Reward.id)}[sort]
        rewards = list(s.scalars(query.order_by(*order)))
        viewer = get_member(s, program, member_id) if member_id else None
        shown = []
        for r in rewards:
            start = service.opens_at(program, r, viewer)
            if start is not None and now < start - dt.timedelta(days=7) and viewer is None:
                continue
            view = reward_view(r)
            if viewer is not None:
                try:
                    service.check_eligible(program, r, viewer, now)
                    view["eligible"] = True
                except JifenError as exc:
                    view["eligible"], view["why_not"] = False, exc.code
            shown.append(view)
        return shown[:limit]


@router.post("/redemptions", status_code=201, summary="Redeem: hold the points and reserve the stock together")
def create_redemption(body: RedemptionIn, request: Request, who: Buyer, key: Key):
    return write(request, who, key, "redemptions.create", body, lambda sc: redemption_view(sc.session, service.redeem(
        sc, member(sc, body.member_id), service.get_reward(sc.session, sc.program, body.reward), body.quantity,
        body.address)), status=201)


@router.get("/redemptions/{redemption_id}", summary="A redemption and its coupons")
def show_redemption(redemption_id: int, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return redemption_view(s, service.get_redemption(s, s.get(Program, who.program_id), redemption_id))


def _transition(name: str, fn):
    def endpoint(redemption_id: int, request: Request, who: Manager, key: Key):
        return write(request, who, key, f"redemptions.{name}:{redemption_id}", _NoBody(), lambda sc: redemption_view(
            sc.session, fn(sc, service.get_redemption(sc.session, sc.program, redemption_id))))

    endpoint.__name__ = f"{name}_redemption"
    return endpoint


class _NoBody(BaseModel):
    pass


router.post("/redemptions/{redemption_id}/fulfil", summary="Shipped / delivered: the held points are spent")(
    _transition("fulfil", service.fulfil))
router.post("/redemptions/{redemption_id}/cancel", summary="Cancel before fulfilment: points released, stock back")(
    _transition("cancel", service.cancel))
router.post("/redemptions/{redemption_id}/refund", summary="After-sale refund: points back to their own lots")(
    _transition("refund", service.refund))


@router.post("/coupons/{code}/redeem", summary="Write off (核銷) a coupon at a till: once, before it expires")
def redeem_coupon(code: str, body: WriteOffIn, request: Request, who: Till):
    return run_in_transaction(request.app.state.sessions, lambda s: coupon_view(service.write_off(
        s, s.get(Program, who.program_id), code, body.merchant, body.store, utcnow())))

