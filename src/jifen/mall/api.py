"""Points mall API: rewards, redemption orders and their transitions, coupon write-off at the till."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from jifen.apikit import Key, grouped, keyed, member, write
from jifen.db import utcnow
from jifen.errors import Conflict, InvalidRequest, JifenError, NotFound
from jifen.flows.pricing import pricer
from jifen.flows.redeem import ordered, redeem
from jifen.freejson import FreeJson
from jifen.ledger.schemas import MemberId
from jifen.mall import lottery, partners, service
from jifen.mall.models import KINDS, Coupon, LotteryDraw, LotteryPrize, Partner, Redemption, Reward
from jifen.mall.reports import supplier_settlement
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.openapi import errors
from jifen.programs.models import Program
from jifen.rules.schema import CODE
from jifen.security.deps import require
from jifen.security.service import Principal
from jifen.strict import Strict

router = APIRouter(prefix="/v1", tags=["mall"])
Manager = Annotated[Principal, Depends(require("mall:manage"))]
Buyer = Annotated[Principal, Depends(require("points:write"))]
Reader = Annotated[Principal, Depends(require("members:read"))]
Till = Annotated[Principal, Depends(require("coupons:redeem"))]


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
    per_day_limit: int | None = Field(None, ge=1)
    cash_points: int | None = Field(None, ge=1, le=10**9)  # points + cash: these points …
    cash: Decimal | None = Field(None, gt=0)  # … and this much ¥
    discount_pct: int = Field(0, ge=0, le=99)
    discount_until: AwareDatetime | None = None
    tier_shares: dict[str, Decimal] = {}  # {"normal": 0.2}: a tier's share of the stock
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    coupon: CouponTerms | None = None
    honeypot: bool = False  # risk control: whoever redeems it goes to review (never shown as such to members)


class RedemptionIn(Strict):
    member_id: MemberId
    reward: str = Field(min_length=1, max_length=64)
    quantity: int = Field(1, ge=1, le=100)
    address: FreeJson | None = None
    pay: Literal["points", "points_cash"] = "points"
    # Where the order was placed from (risk control's device / IP graph); optional.
    device_id: str | None = Field(None, min_length=1, max_length=128)
    ip: str | None = Field(None, min_length=1, max_length=64)


class WriteOffIn(Strict):
    merchant: str = Field(min_length=1, max_length=100)
    store: str | None = Field(None, max_length=100)


def price_view(p: service.Price) -> dict:
    """The price now; with a campaign's double-value offer, the normal price and the campaign beside it."""
    if p.offer is None:
        return {"price_now": p.points}
    return {"price_now": p.points, "price_normal": p.normal,
            "campaign": {"code": p.offer.campaign, "name": p.offer.name, "factor": str(p.offer.factor)}}


def reward_view(r: Reward, price: service.Price | None = None) -> dict:
    return {"code": r.code, "name": r.name, "kind": r.kind, "category": r.category, "points": r.points,
            **(price_view(price) if price is not None else {}),
            "cash_price": {"points": r.cash_points, "cash": str(r.cash)} if r.cash_points else None,
            "stock": r.stock, "sold": r.sold, "value": str(r.value), "min_tier": r.min_tier,
            "per_member_limit": r.per_member_limit, "starts_at": r.starts_at.isoformat() if r.starts_at else None,
            "ends_at": r.ends_at.isoformat() if r.ends_at else None, "coupon": r.coupon or None}


def redemption_view(session, r: Redemption) -> dict:
    # (coupons are issued when an order is fulfilled, and stay, voided, after its refund: none before)
    coupons = session.scalars(select(Coupon).where(Coupon.redemption_id == r.id).order_by(Coupon.code)).all() \
        if r.status in ("fulfilled", "refunded") else []
    return {"id": r.id, "member_id": session.get(Member, r.member_pk).member_id,
            "reward": session.get(Reward, r.reward_id).code, "quantity": r.quantity, "points": r.points,
            "cash": str(r.cash), "status": r.status, "hold_id": r.hold_id,
            "campaign": {"code": r.campaign, "points_saved": r.points_saved} if r.campaign else None,
            "address": r.address or None,
            "risk": r.risk or None,
            "coupons": [{"code": c.code, "status": c.status, "expires_at": c.expires_at.isoformat()} for c in coupons],
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat()}


def coupon_view(c: Coupon) -> dict:
    return {"code": c.code, "status": c.status, "merchant": c.merchant, "store": c.store,
            "used_at": c.used_at.isoformat() if c.used_at else None, "expires_at": c.expires_at.isoformat()}


@router.post("/rewards", status_code=201, summary="Add a reward to the catalogue")
def create_reward(body: RewardIn, request: Request, who: Manager, key: Key):
    def work(s):
        r = service.add_reward(s, who.program_id, body.model_dump(), utcnow())
        return reward_view(r) | {"honeypot": r.honeypot}  # the catalogue (members' view) never says so

    return keyed(request, who, key, "rewards.create", body, work, status=201)


@router.get("/rewards", responses=errors(404),
            summary="The catalogue: category prefix, keyword, sort; a member sees what they may redeem")
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
        price_of = pricer(s, program, viewer, now)  # a member's campaign offer included
        shown = []
        for r in rewards:
            start = service.opens_at(program, r, viewer)
            if start is not None and now < start - dt.timedelta(days=7) and viewer is None:
                continue
            view = reward_view(r, price_of(r))
            if viewer is not None:
                try:
                    service.check_eligible(program, r, viewer, now)
                    view["eligible"] = True
                except JifenError as exc:
                    view["eligible"], view["why_not"] = False, exc.code
            shown.append(view)
        return shown[:limit]


@router.post("/redemptions", status_code=201, responses=errors(404),
             summary="Redeem: hold the points and reserve the stock together")
async def create_redemption(body: RedemptionIn, request: Request, who: Buyer, key: Key):
    # Committed with the concurrent redemptions (flows/redeem.py): a flash sale's stock row taken once a group.
    return await grouped(request, request.app.state.redemption_commit, who, key, "redemptions.create", body,
                         lambda sc: redemption_view(sc.session, redeem(
                             sc, *ordered(sc, body.member_id, body.reward),
                             body.quantity, body.address, body.pay, body.device_id, body.ip)), status=201)


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
router.post("/redemptions/{redemption_id}/approve", summary="Review: let an order held by a risk rule go on")(
    _transition("approve", service.approve))
router.post("/redemptions/{redemption_id}/reject", summary="Review: refuse an order held by a risk rule")(
    _transition("reject", service.reject))


@router.post("/coupons/{code}/redeem", summary="Write off (核銷) a coupon at a till: once, before it expires")
def redeem_coupon(code: str, body: WriteOffIn, request: Request, who: Till, key: Key):
    return keyed(request, who, key, f"coupons.redeem:{code}", body, lambda s: coupon_view(service.write_off(
        s, s.get_one(Program, who.program_id), code, body.merchant, body.store, utcnow(), by=who.actor)))



Reports = Annotated[Principal, Depends(require("reports:read"))]


class PrizeIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    weight: int = Field(ge=0, le=10**9)
    stock: int | None = Field(None, ge=0)
    points: int = Field(0, ge=0, le=10**9)
    value: Decimal = Field(Decimal(0), ge=0)


class LotteryIn(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    cost: int = Field(ge=1, le=10**9)
    budget: Decimal | None = Field(None, ge=0)
    prizes: list[PrizeIn] = Field(min_length=1, max_length=100)


class DrawIn(Strict):
    member_id: MemberId


class PartnerIn(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=32)
    points_per_unit_out: int | None = Field(None, ge=1)
    points_per_unit_in: int | None = Field(None, ge=1)
    min_units: int = Field(1, ge=1)
    max_units_per_day: int | None = Field(None, ge=1)


class ExchangeIn(Strict):
    member_id: MemberId
    direction: Literal["out", "in"]
    units: int = Field(ge=1, le=10**9)
    reference: str = Field(min_length=1, max_length=100)


def _period(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise InvalidRequest("give from and to with a timezone, to after from", code="invalid_period")


CSV: dict[int | str, dict[str, Any]] = {
    200: {"description": "JSON rows, or CSV with format=csv", "content": {"text/csv": {"schema": {"type": "string"}}}}}


def table(rows: list[dict], fmt: str):
    """JSON rows, or the same as CSV for spreadsheets."""
    if fmt != "csv":
        return rows
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")


@router.post("/lotteries", status_code=201, summary="A lottery / blind box: cost per draw, weighted prizes")
def create_lottery(body: LotteryIn, request: Request, who: Manager, key: Key):
    def work(s):
        pool = lottery.create_pool(s, who.program_id, body.code, body.name, body.cost, body.budget,
                                   [p.model_dump() for p in body.prizes])
        return {"code": pool.code, "cost": pool.cost, "prizes": len(body.prizes)}

    return keyed(request, who, key, "lotteries.create", body, work, status=201)


def draw_view(session, d: LotteryDraw) -> dict:
    prize = session.get(LotteryPrize, d.prize_id)
    return {"draw_id": d.id, "prize": prize.name, "points_won": prize.points, "random": d.random,
            "candidates": d.candidates, "cost_entry_id": d.cost_entry_id, "award_entry_id": d.award_entry_id}


@router.post("/lotteries/{code}/draw", status_code=201, summary="Pay the cost and draw a prize")
def lottery_draw(code: str, body: DrawIn, request: Request, who: Buyer, key: Key):
    return write(request, who, key, f"lottery.draw:{code}", body, lambda sc: draw_view(sc.session, lottery.draw(
        sc, member(sc, body.member_id), lottery.get_pool(sc.session, sc.program.id, code))), status=201)


@router.get("/lotteries/{code}/draws/{draw_id}/verify", summary="Recompute a draw from its recorded random number")
def verify_draw(code: str, draw_id: int, request: Request, who: Reports):
    with request.app.state.read_sessions() as s:
        pool = lottery.get_pool(s, who.program_id, code)
        d = s.get(LotteryDraw, draw_id)
        if d is None or d.pool_id != pool.id:
            raise NotFound(f"no draw {draw_id} in {code!r}", code="unknown_draw")
        again = lottery.replay(d)
        return {"draw_id": d.id, "prize_id": d.prize_id, "replayed_prize_id": again, "matches": again == d.prize_id}


@router.post("/partners", status_code=201, summary="A partner programme with exchange rates and limits")
def create_partner(body: PartnerIn, request: Request, who: Manager, key: Key):
    def work(s):
        if s.scalar(select(Partner.id).where(Partner.program_id == who.program_id, Partner.code == body.code)):
            raise Conflict(f"partner {body.code!r} exists", code="partner_exists")
        s.add(Partner(program_id=who.program_id, **body.model_dump()))
        return body.model_dump()

    return keyed(request, who, key, "partners.create", body, work, status=201)


@router.post("/partners/{code}/exchanges", status_code=201, summary="Points out to the partner, or units in")
def partner_exchange(code: str, body: ExchangeIn, request: Request, who: Buyer, key: Key):
    def work(sc):
        x = partners.exchange(sc, member(sc, body.member_id), partners.get_partner(sc.session, sc.program.id, code),
                              body.direction, body.units, body.reference)
        return {"id": x.id, "direction": x.direction, "units": x.units, "points": x.points, "entry_id": x.entry_id}

    return write(request, who, key, f"partners.exchange:{code}", body, work, status=201)


@router.get("/partners/{code}/reconciliation", responses=CSV,
            summary="Every exchange with a partner in a period (JSON or CSV)")
def partner_reconciliation(code: str, request: Request, who: Reports, start: Annotated[dt.datetime, Query(alias="from")],
                           end: Annotated[dt.datetime, Query(alias="to")], format: Literal["json", "csv"] = "json"):
    _period(start, end)
    with request.app.state.read_sessions() as s:
        return table(partners.reconciliation(s, partners.get_partner(s, who.program_id, code), start, end), format)


@router.get("/reports/suppliers", responses=CSV,
            summary="Supplier settlement: units, points and cost per supplier (JSON or CSV)")
def suppliers_report(request: Request, who: Reports, start: Annotated[dt.datetime, Query(alias="from")],
                     end: Annotated[dt.datetime, Query(alias="to")], format: Literal["json", "csv"] = "json"):
    _period(start, end)
    with request.app.state.read_sessions() as s:
        return table(supplier_settlement(s, who.program_id, start, end), format)
