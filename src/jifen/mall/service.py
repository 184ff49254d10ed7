"""Redemption in the points mall. One transaction places the hold on the points and reserves the stock
(a conditional UPDATE that never lets stock go below zero), so a flash sale can neither oversell nor
take points from a member who did not get the item. Lock order: member, then reward."""

from __future__ import annotations

import datetime as dt
import math
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from jifen.db import by_code, owned
from jifen.errors import Conflict, Forbidden, InsufficientPoints, InvalidRequest, NotFound
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.ledger.models import Hold
from jifen.mall.models import Coupon, Redemption, Reward
from jifen.members.models import Member
from jifen.outbox import emit
from jifen.programs import tiers
from jifen.programs.models import Program
from jifen.risk import cases as risk_cases
from jifen.risk.restrictions import ensure_unrestricted
from jifen.rules import budgets
from jifen.rules.engine import round_points

_RESERVE = (update(Reward).where(Reward.id == bindparam("reward"),
                                 Reward.stock.is_(None) | (Reward.stock >= bindparam("qty")))
            .values(stock=Reward.stock - bindparam("qty"), sold=Reward.sold + bindparam("qty"))
            .returning(Reward.id))
_RESTOCK = (update(Reward).where(Reward.id == bindparam("reward"))
            .values(stock=Reward.stock + bindparam("qty"), sold=Reward.sold - bindparam("qty")))
_WRITE_OFF = (update(Coupon).where(Coupon.code == bindparam("b_code"), Coupon.program_id == bindparam("b_program"),
                                   Coupon.status == "issued", Coupon.expires_at > bindparam("b_now"))
              .values(status="used", used_at=bindparam("b_now"), merchant=bindparam("b_merchant"),
                      store=bindparam("b_store"), used_by=bindparam("b_by")).returning(Coupon.code))
IMMEDIATE = ("coupon", "virtual", "charity", "privilege")  # fulfilled as they are redeemed
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a till


def sold_out(session: Session, reward: Reward, quantity: int) -> bool:
    """Fewer units left than asked, as far as this transaction can tell without a lock: answered before risk
    control and the holds (a flash sale's late attempts, most of its traffic, then cost a few reads each).
    A reward that looks in stock is decided by `reserve_stock`, under the row's lock."""
    allotment = session.info.get(Allotment.KEY)
    if allotment is not None and reward.id in allotment.left:
        return not cast(Allotment, allotment).has(reward.id, quantity)
    return reward.stock is not None and reward.stock < quantity


def reserve_stock(session: Session, reward: Reward, quantity: int) -> bool:
    """Take units from the stock unless fewer are left (the row stays locked to the transaction's end); from
    the transaction's allotment when a group of redemptions holds one for the reward."""
    allotment = session.info.get(Allotment.KEY)
    if allotment is not None and reward.id in allotment.left:
        return cast(Allotment, allotment).take(reward.id, quantity)
    return session.execute(_RESERVE, {"reward": reward.id, "qty": quantity}).first() is not None


class Allotment:
    """The stock of some rewards taken once for a group of redemptions in one transaction (flows/redeem.py):
    their rows locked up front (after the members: lock order member → reward), the units handed out in
    memory in the group's order, and taken from each row by one conditional UPDATE (the one a single
    redemption runs, `stock >= units`) before the group commits. A flash sale's hot row is then locked once
    per group instead of once per order, and held only while the group's transaction runs."""

    KEY = "jifen.mall.allotment"  # (in the session's info while the group runs)

    def __init__(self, session: Session, program_id: int, codes: set[str]):
        rows = session.execute(select(Reward.id, Reward.code, Reward.stock).where(
            Reward.program_id == program_id, Reward.code.in_(sorted(codes))).order_by(Reward.id).with_for_update()).all()
        self.session = session
        self.ids = {r.code: r.id for r in rows}
        self.left: dict[int, int | None] = {r.id: r.stock for r in rows}  # None: unlimited
        self.taken = dict.fromkeys(self.left, 0)
        session.info[self.KEY] = self

    def has(self, reward_id: int, quantity: int) -> bool:
        left = self.left[reward_id]
        return left is None or left - self.taken[reward_id] >= quantity

    def take(self, reward_id: int, quantity: int) -> bool:
        if not self.has(reward_id, quantity):
            return False
        self.taken[reward_id] += quantity
        return True

    def mark(self) -> dict[int, int]:
        return dict(self.taken)

    def undo(self, mark: dict[int, int]) -> None:
        """The units a refused redemption took go back (its savepoint was rolled back)."""
        self.taken = mark

    def close(self) -> None:
        del self.session.info[self.KEY]
        for reward_id, quantity in self.taken.items():
            if quantity and self.session.execute(_RESERVE, {"reward": reward_id, "qty": quantity}).first() is None:
                raise RuntimeError(f"reward {reward_id}: {quantity} units allotted but not in stock")  # (locked: never)


def get_reward(session: Session, program: Program, code: str) -> Reward:
    return by_code(session, Reward, program.id, code, "reward")


def opens_at(program: Program, reward: Reward, member: Member | None) -> dt.datetime | None:
    """When the member may redeem: the sale start, earlier by early_access_hours for the early tier."""
    if reward.starts_at is None:
        return None
    # (the ladder is looked up only for a reward that has early access: it is a query, and a flash sale is hot)
    early = member is not None and reward.early_access_tier and reward.early_access_hours
    cfg = tiers.tier_config(program) if early else None
    if member is not None and cfg and reward.early_access_tier and reward.early_access_hours and \
            cfg.rank(member.tier) >= cfg.rank(reward.early_access_tier):
        return reward.starts_at - dt.timedelta(hours=reward.early_access_hours)
    return reward.starts_at


def check_eligible(program: Program, reward: Reward, member: Member, now: dt.datetime) -> None:
    if not reward.active:
        raise Conflict(f"reward {reward.code!r} is not available", code="not_on_sale")
    start = opens_at(program, reward, member)
    if start is not None and now < start:
        raise Conflict(f"reward {reward.code!r} opens at {start.isoformat()}", code="not_on_sale")
    if reward.ends_at is not None and now >= reward.ends_at:
        raise Conflict(f"the sale of {reward.code!r} has ended", code="not_on_sale")
    cfg = tiers.tier_config(program, now) if reward.min_tier else None
    if reward.min_tier and cfg and cfg.rank(member.tier) < cfg.rank(reward.min_tier):
        level = cfg.level(reward.min_tier)
        raise Forbidden(f"{reward.name} is for {level.name if level else reward.min_tier} members and above",
                        code="not_eligible")


def unit_price(program: Program, reward: Reward, now: dt.datetime, pay: str = "points") -> tuple[int, Decimal]:
    """(points, ¥ cash) per unit now: the points price or the points + cash alternative, less a running
    discount, divided on the programme's double-value days; points round up."""
    if pay == "points_cash":
        if reward.cash_points is None:
            raise InvalidRequest(f"{reward.name} has no points + cash price", code="no_cash_price")
        points, cash = Decimal(reward.cash_points), reward.cash or Decimal(0)
    else:
        points, cash = Decimal(reward.points), Decimal(0)
    if reward.discount_pct and (reward.discount_until is None or now < reward.discount_until):
        points = points * (100 - reward.discount_pct) / 100
    dv = program.double_value or {}
    local = now.astimezone(ZoneInfo(program.timezone))
    if local.day in dv.get("days_of_month", []) or local.isoweekday() in dv.get("weekdays", []):
        points = points / Decimal(str(dv.get("factor", 2)))
    return max(1, math.ceil(points)), cash


@dataclass(frozen=True)
class Offer:
    """A campaign's double-value redemption days as they apply to one member now (campaigns/redemption_days.py
    finds it): points prices divided by `factor`, while the campaign's budget covers the points saved."""

    campaign: str  # the campaign's code
    name: str
    factor: Decimal
    budget: int  # the campaign's budget in points …
    budget_left: int  # … and what was left of it when the offer was read
    sponsor_share: Decimal | None = None


class Price(NamedTuple):
    """What a member pays per unit now: `points` and `cash`; `normal` the points without the campaign's offer
    (the offer is kept only when it lowers the price and its budget covers one unit's saving)."""

    points: int
    cash: Decimal
    normal: int
    offer: Offer | None = None

    @property
    def saved(self) -> int:
        return self.normal - self.points

    def without_offer(self) -> Price:
        return Price(self.normal, self.cash, self.normal)


def member_price(program: Program, reward: Reward, now: dt.datetime, pay: str = "points",
                 offer: Offer | None = None) -> Price:
    """The price now (unit_price) with a campaign's offer: ⌈points ÷ factor⌉ — rounded up like every points
    price, so an odd price leaves the member the half point, never the programme a fraction; the cash part
    stays as it is."""
    points, cash = unit_price(program, reward, now, pay)
    if offer is None:
        return Price(points, cash, points)
    divided = max(1, math.ceil(Decimal(points) / offer.factor))
    if not 0 < points - divided <= offer.budget_left:
        return Price(points, cash, points)
    return Price(divided, cash, points, offer)


def _eligible(sc: ops.Scope, reward: Reward, member: Member) -> bool:
    try:
        check_eligible(sc.program, reward, member, sc.now)
        return True
    except (Conflict, Forbidden):
        return False


def suggestions(sc: ops.Scope, member: Member, reward: Reward, offer: Offer | None = None) -> dict:
    """When a redemption fails for points or stock: what the member could take instead, at the member's
    prices (the campaign offer the failed order was priced with)."""
    return _Alternatives(sc, reward, offer).for_member(member, ops.available(sc.session, member, sc.wallet))


class _Alternatives:
    """The rewards of a failed order's top category that are on sale, read and priced once for any number of
    members (`offer`: the failed order's campaign offer, the same for all of them)."""

    def __init__(self, sc: ops.Scope, reward: Reward, offer: Offer | None = None):
        self.sc, self.reward, self.offer = sc, reward, offer
        top = reward.category.split("/")[0]
        others = sc.session.scalars(select(Reward).where(
            Reward.program_id == sc.program.id, Reward.active.is_(True), Reward.id != reward.id,
            (Reward.category == top) | Reward.category.startswith(top + "/"),
            Reward.stock.is_(None) | (Reward.stock > 0)))
        self.priced = sorted(((r, member_price(sc.program, r, sc.now, offer=offer).points) for r in others),
                             key=lambda rp: -rp[1])

    def for_member(self, member: Member, available: int) -> dict:
        sc, reward = self.sc, self.reward
        fits = [(r, p) for r, p in self.priced if p <= available and _eligible(sc, r, member)]
        out: dict = {"suggestions": [{"reward": r.code, "name": r.name, "points": p} for r, p in fits[:3]]}
        if reward.cash_points is not None:
            points, cash, *_ = member_price(sc.program, reward, sc.now, "points_cash", self.offer)
            if points <= available:
                out["points_cash"] = {"points": points, "cash": str(cash)}
        return out


def out_of_stock(sc: ops.Scope, member: Member, reward: Reward, offer: Offer | None = None) -> Conflict:
    return _out_of_stock(reward, suggestions(sc, member, reward, offer))


def out_of_stock_for(sc: ops.Scope, members: list[Member], reward: Reward) -> list[Conflict]:
    """`out_of_stock` (no campaign offer) for many members, in two reads: their points and the alternatives."""
    alternatives = _Alternatives(sc, reward)
    available = ops.available_of(sc.session, [m.id for m in members], sc.wallet)
    return [_out_of_stock(reward, alternatives.for_member(m, available.get(m.id, 0))) for m in members]


def _out_of_stock(reward: Reward, details: dict) -> Conflict:
    return Conflict(f"{reward.name} is out of stock", code="out_of_stock", details=details)


def check_order(sc: ops.Scope, member: Member, reward: Reward, quantity: int, address: dict | None = None) -> None:
    """An order checked before anything is priced or held."""
    if not 1 <= quantity <= 100:
        raise InvalidRequest("quantity must be 1 to 100", code="invalid_quantity")
    check_eligible(sc.program, reward, member, sc.now)
    if reward.kind == "physical" and not address:
        raise InvalidRequest("a physical reward needs a delivery address", code="address_required")


def lock_reward(session: Session, reward: Reward) -> None:
    """The reward's row locked ahead of a campaign budget's (lock order member → reward → budget: a group of
    redemptions locks its rewards first, flows/redeem.py)."""
    session.execute(select(Reward.id).where(Reward.id == reward.id).with_for_update())


def place(sc: ops.Scope, member: Member, reward: Reward, quantity: int, price: Price,
          address: dict | None = None, *, review: bool = False, risk: dict | None = None) -> Redemption:
    """Hold the points and reserve the stock together (the caller holds the member's lock); coupons and
    virtual goods are fulfilled at once. An order risk control sent to `review` waits for a person, its
    points held and its stock reserved (flows/redeem.py). A campaign's offer in the price was counted
    against its budget by the caller; the order records the campaign, the points saved and the sponsor's
    part of them."""
    points, cash, offer = price.points, price.cash, price.offer
    _check_limits(sc, member, reward, quantity)
    if not reserve_stock(sc.session, reward, quantity):
        raise out_of_stock(sc, member, reward, offer)
    _check_tier_share(sc, member, reward, quantity, offer)  # after the reward row is locked: counted safely
    try:
        ensure_unrestricted(sc.session, [member.id], sc.now)
        hold = ops.hold(sc, member, points * quantity, reference=f"redemption {reward.code} × {quantity}")
    except InsufficientPoints as exc:
        raise InsufficientPoints(exc.message, details=suggestions(sc, member, reward, offer)) from None
    saved = price.saved * quantity
    sponsored = round_points(saved * offer.sponsor_share, "half_up") if offer and offer.sponsor_share else 0
    r = Redemption(program_id=sc.program.id, member_pk=member.id, reward_id=reward.id, quantity=quantity,
                   points=points * quantity, cash=cash * quantity, tier=member.tier, status="held", hold_id=hold.id,
                   campaign=offer.campaign if offer else None, points_saved=saved, sponsored=sponsored,
                   address=address or {}, risk=risk or {}, created_at=sc.now, updated_at=sc.now)
    sc.session.add(r)
    sc.session.flush()
    if review:
        r.status = "review"  # points held and stock reserved; a person approves or rejects
        _announce(sc, r, reward)
    elif reward.kind in IMMEDIATE and not cash:
        fulfil(sc, r)
    else:  # physical goods ship later; a cash part is paid first
        _announce(sc, r, reward)
    return r


_TAKEN = select(func.coalesce(func.sum(Redemption.quantity), 0)).where(
    Redemption.reward_id == bindparam("reward"), Redemption.status.in_(("held", "fulfilled")))


def _check_limits(sc: ops.Scope, member: Member, reward: Reward, quantity: int) -> None:
    """Per-member limits, lifetime and per programme day (the member is locked)."""
    mine = _TAKEN.where(Redemption.member_pk == member.id)
    if reward.per_member_limit is not None and (
            cast(int, sc.session.scalar(mine, {"reward": reward.id})) + quantity > reward.per_member_limit):
        raise Conflict(f"at most {reward.per_member_limit} of {reward.name} per member", code="limit_reached")
    if reward.per_day_limit is not None:
        tz = ZoneInfo(sc.program.timezone)
        midnight = dt.datetime.combine(sc.now.astimezone(tz).date(), dt.time(), tz).astimezone(dt.UTC)
        today = cast(int, sc.session.scalar(mine.where(Redemption.created_at >= midnight), {"reward": reward.id}))
        if today + quantity > reward.per_day_limit:
            raise Conflict(f"at most {reward.per_day_limit} of {reward.name} a day", code="limit_reached")


def _check_tier_share(sc: ops.Scope, member: Member, reward: Reward, quantity: int, offer: Offer | None) -> None:
    share = (reward.tier_shares or {}).get(member.tier or "")
    if share is None or reward.stock_total is None:
        return
    allowed = int(reward.stock_total * Decimal(str(share)))
    taken = cast(int, sc.session.scalar(_TAKEN.where(Redemption.tier == member.tier), {"reward": reward.id}))
    if taken + quantity > allowed:
        raise Conflict(f"the share of {reward.name} for your tier is sold out", code="out_of_stock",
                       details=suggestions(sc, member, reward, offer))


def add_reward(session: Session, program_id: int, fields: dict, now: dt.datetime) -> Reward:
    """A new catalogue entry; `fields` as the API's RewardIn dumps them (the console's form goes through it too)."""
    fields = dict(fields)
    if session.scalar(select(Reward.id).where(Reward.program_id == program_id, Reward.code == fields["code"])):
        raise Conflict(f"reward {fields['code']!r} exists", code="reward_exists")
    if (fields.get("cash_points") is None) != (fields.get("cash") is None):
        raise InvalidRequest("give cash_points and cash together", code="invalid_cash_price")
    shares = fields.pop("tier_shares", None) or {}
    if any(not 0 < v <= 1 for v in shares.values()):
        raise InvalidRequest("tier_shares are fractions between 0 and 1", code="invalid_tier_share")
    coupon = {k: str(v) if isinstance(v, Decimal) else v for k, v in (fields.pop("coupon", None) or {}).items()}
    r = Reward(program_id=program_id, **fields, coupon=coupon, tier_shares={k: str(v) for k, v in shares.items()},
               stock_total=fields.get("stock"), sold=0, active=True, created_at=now)
    session.add(r)
    session.flush()
    return r


def edit_reward(reward: Reward, *, name: str, points: int, active: bool) -> Reward:
    """What an operator changes on a listed reward: its name, its price, whether members see it."""
    if not name.strip() or len(name) > 200:
        raise InvalidRequest("a reward needs a name of 1 to 200 characters", code="invalid_reward")
    if not 1 <= points <= 10**9:
        raise InvalidRequest("the price is 1 to 1,000,000,000 points", code="invalid_reward")
    reward.name, reward.points, reward.active = name.strip(), points, active
    return reward


_CHANGE_STOCK = (update(Reward).where(Reward.id == bindparam("reward"), Reward.stock + bindparam("delta") >= 0)
                 .values(stock=Reward.stock + bindparam("delta"),
                         stock_total=func.coalesce(Reward.stock_total, 0) + bindparam("delta"))
                 .returning(Reward.stock))


def change_stock(session: Session, reward: Reward, delta: int) -> int:
    """Units added (a delivery) or taken off (damaged, recounted); a conditional UPDATE, so a redemption
    running at the same time can never leave the stock below zero. Returns the stock now."""
    if reward.stock is None:
        raise Conflict(f"reward {reward.code!r} has unlimited stock", code="unlimited_stock")
    if delta == 0:
        raise InvalidRequest("change the stock by a number other than 0", code="invalid_stock")
    left = session.execute(_CHANGE_STOCK, {"reward": reward.id, "delta": delta}).scalar()
    if left is None:
        raise Conflict(f"only {reward.stock} units of {reward.code!r} are left: cannot take {-delta}",
                       code="insufficient_stock")
    session.refresh(reward)
    return left


def get_redemption(session: Session, program: Program, redemption_id: int) -> Redemption:
    return owned(session, Redemption, redemption_id, program.id, "redemption", "unknown_redemption")


def _move(r: Redemption, allowed: str, to: str) -> None:
    if r.status != allowed:
        raise Conflict(f"redemption {r.id} is {r.status}: it cannot become {to}", code="illegal_transition")


def _announce(sc: ops.Scope, r: Redemption, reward: Reward) -> None:
    emit(sc.session, sc.program.id, "redemption.updated", {
        "redemption_id": r.id, "status": r.status, "reward": reward.code, "quantity": r.quantity,
        "points": r.points, "member_pk": r.member_pk}, r.member_pk)


@ops.atomic
def fulfil(sc: ops.Scope, r: Redemption) -> Redemption:
    _move(r, "held", "fulfilled")
    ops.capture(sc, r.hold_id)
    r.status, r.updated_at = "fulfilled", sc.now
    reward = sc.session.get_one(Reward, r.reward_id)
    if reward.kind == "coupon":
        days = int(reward.coupon.get("valid_days", 30))
        sc.session.add_all(Coupon(code="".join(secrets.choice(CODE_ALPHABET) for _ in range(16)),
                                  program_id=sc.program.id, redemption_id=r.id, member_pk=r.member_pk,
                                  reward_id=reward.id, status="issued", expires_at=sc.now + dt.timedelta(days=days))
                           for _ in range(r.quantity))
    sc.session.flush()
    _announce(sc, r, reward)
    return r


@ops.atomic
def approve(sc: ops.Scope, r: Redemption) -> Redemption:
    """A reviewed order goes on as it would have: fulfilled at once for coupons and the like."""
    _move(r, "review", "held")
    r.status, r.updated_at = "held", sc.now
    risk_cases.close_for(sc.session, sc.program.id, "redemption", r.id, "approve", sc.actor, sc.now,
                         "approved through the redemption")
    reward = sc.session.get_one(Reward, r.reward_id)
    if reward.kind in IMMEDIATE and not r.cash:
        return fulfil(sc, r)
    _announce(sc, r, reward)
    return r


@ops.atomic
def reject(sc: ops.Scope, r: Redemption) -> Redemption:
    """A reviewed order refused: points released, stock back."""
    _move(r, "review", "cancelled")
    r.status = "held"
    risk_cases.close_for(sc.session, sc.program.id, "redemption", r.id, "reject", sc.actor, sc.now,
                         "rejected through the redemption")
    return cancel(sc, r)


def _give_back_saving(sc: ops.Scope, r: Redemption) -> None:
    """The member gets back what the order held or took (the discounted points, by the ledger); the points
    the campaign's offer saved return to its budget, as a refunded purchase's campaign points do."""
    if r.campaign and r.points_saved:
        budgets.give_back(sc.session, sc.program.id, budgets.of_campaign(r.campaign), r.points_saved)


@ops.atomic
def cancel(sc: ops.Scope, r: Redemption) -> Redemption:
    _move(r, "held", "cancelled")
    lock_members(sc.session, [r.member_pk])
    ops.release(sc, r.hold_id)
    sc.session.execute(_RESTOCK, {"reward": r.reward_id, "qty": r.quantity})
    _give_back_saving(sc, r)
    r.status, r.updated_at = "cancelled", sc.now
    _announce(sc, r, sc.session.get_one(Reward, r.reward_id))
    return r


@ops.atomic
def refund(sc: ops.Scope, r: Redemption) -> Redemption:
    """After-sale: the points go back to the very lots they came from; unused coupons are voided."""
    _move(r, "fulfilled", "refunded")
    if (r.address or {}).get("pooled"):
        raise Conflict("a pooled redemption is refunded by customer service, contributor by contributor",
                       code="pooled_redemption")
    lock_members(sc.session, [r.member_pk])
    coupons = list(sc.session.scalars(select(Coupon).where(Coupon.redemption_id == r.id)))
    if any(c.status == "used" for c in coupons):
        raise Conflict(f"a coupon of redemption {r.id} was already used", code="coupon_used")
    for c in coupons:
        c.status = "void"
    # (a refunded redemption was fulfilled: its hold was captured, so it has a settle entry)
    ops.reverse(sc, cast(int, sc.session.get_one(Hold, r.hold_id).settle_entry_id), reason=f"refund of redemption {r.id}")
    sc.session.execute(_RESTOCK, {"reward": r.reward_id, "qty": r.quantity})
    _give_back_saving(sc, r)
    r.status, r.updated_at = "refunded", sc.now
    _announce(sc, r, sc.session.get_one(Reward, r.reward_id))
    return r


def write_off(session: Session, program: Program, code: str, merchant: str, store: str | None,
              now: dt.datetime, by: str | None = None) -> Coupon:
    """POS 核銷: once only, before expiry (a conditional UPDATE: two tills at once, one wins). `by`: the
    actor (API key or console user) who wrote it off, for the write-off log."""
    done = session.execute(_WRITE_OFF, {"b_code": code, "b_program": program.id, "b_now": now,
                                        "b_merchant": merchant, "b_store": store, "b_by": by}).first()
    coupon = session.scalar(select(Coupon).where(Coupon.code == code, Coupon.program_id == program.id))
    if done is not None:
        session.refresh(coupon)
        return cast(Coupon, coupon)  # (the UPDATE above just found it)
    if coupon is None:
        raise NotFound("unknown coupon code", code="unknown_coupon")
    if coupon.status == "used":
        raise Conflict(f"coupon already used at {cast(dt.datetime, coupon.used_at).isoformat()}", code="coupon_used")
    if coupon.status == "void":
        raise Conflict("coupon was voided (its redemption was refunded)", code="coupon_void")
    raise Conflict(f"coupon expired at {coupon.expires_at.isoformat()}", code="coupon_expired")
