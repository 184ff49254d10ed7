"""Lottery and blind boxes: pay the cost in points, draw a prize by weight among those still in stock
and within the pool's budget, credit points prizes. Every draw keeps its random number and the
weights it drew from, so `replay(draw)` recomputes the same prize."""

from __future__ import annotations

import secrets
from decimal import Decimal

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from jifen.db import by_code
from jifen.errors import Conflict
from jifen.ledger import operations as ops
from jifen.mall.models import LotteryDraw, LotteryPool, LotteryPrize
from jifen.members.models import Member
from jifen.risk.restrictions import ensure_unrestricted

_TAKE = (update(LotteryPrize).where(LotteryPrize.id == bindparam("prize"),
                                    LotteryPrize.stock.is_(None) | (LotteryPrize.stock > 0))
         .values(stock=LotteryPrize.stock - 1).returning(LotteryPrize.id))


def pick(candidates: list[tuple[int, int]], u: Decimal) -> int:
    """The prize whose cumulative weight interval holds u × total (u uniform in [0, 1))."""
    total = sum(w for _, w in candidates)
    target, running = u * total, 0
    for prize_id, weight in candidates:
        running += weight
        if target < running:
            return prize_id
    return candidates[-1][0]


def uniform() -> Decimal:
    """A random number in [0, 1) from the OS, on a grid of 10^-18: an exact decimal whose text (stored
    with the draw, at most 32 characters) reads back to the same number. (Dividing 53 random bits by 2^53
    rounded at 28 digits and, for small numbers, wrote 33 characters: PostgreSQL refused about one draw
    in a thousand.)"""
    return Decimal(secrets.randbelow(10**18)).scaleb(-18)


def create_pool(session: Session, program_id: int, code: str, name: str, cost: int, budget: Decimal | None,
                prizes: list[dict]) -> LotteryPool:
    """A pool and its weighted prizes (each {name, weight, stock, points, value})."""
    if session.scalar(select(LotteryPool.id).where(LotteryPool.program_id == program_id, LotteryPool.code == code)):
        raise Conflict(f"lottery {code!r} exists", code="lottery_exists")
    pool = LotteryPool(program_id=program_id, code=code, name=name, cost=cost, budget=budget, spent=Decimal(0),
                       active=True)
    session.add(pool)
    session.flush()
    session.add_all(LotteryPrize(pool_id=pool.id, **p) for p in prizes)
    session.flush()
    return pool


def get_pool(session: Session, program_id: int, code: str) -> LotteryPool:
    return by_code(session, LotteryPool, program_id, code, "lottery")


@ops.atomic
def draw(sc: ops.Scope, member: Member, pool: LotteryPool, u: Decimal | None = None) -> LotteryDraw:
    if not pool.active:
        raise Conflict(f"lottery {pool.code!r} is closed", code="not_on_sale")
    s = sc.session
    s.refresh(pool, with_for_update=True)  # the budget is shared: draws of one pool queue here
    ensure_unrestricted(s, [member.id], sc.now)  # (risk control's decision: the ledger does not know it)
    paid = ops.spend(sc, member, pool.cost, reference=f"lottery {pool.code}", reason="抽獎")
    left = None if pool.budget is None else pool.budget - pool.spent
    prizes = list(s.scalars(select(LotteryPrize).where(LotteryPrize.pool_id == pool.id).order_by(LotteryPrize.id)))
    candidates = [(p.id, p.weight) for p in prizes if p.weight > 0 and (p.stock is None or p.stock > 0)
                  and (left is None or p.value <= left)]
    if not candidates:
        raise Conflict(f"lottery {pool.code!r} has no prizes left", code="out_of_stock")
    u = uniform() if u is None else u
    prize = s.get_one(LotteryPrize, pick(candidates, u))
    if s.execute(_TAKE, {"prize": prize.id}).first() is None:
        raise Conflict("prize taken meanwhile", code="out_of_stock")  # not reached: the pool row is locked
    pool.spent += prize.value
    won = ops.award(sc, member, prize.points, reference=f"lottery {pool.code}", reason=f"抽中 {prize.name}") \
        if prize.points else None
    record = LotteryDraw(pool_id=pool.id, member_pk=member.id, random=str(u), candidates=[list(c) for c in candidates],
                         prize_id=prize.id, cost_entry_id=paid.id, award_entry_id=won.id if won else None,
                         created_at=sc.now)
    s.add(record)
    s.flush()
    return record


def replay(record: LotteryDraw) -> int:
    """The prize the recorded random number picks from the recorded weights (an audit re-computes it)."""
    return pick([(p, w) for p, w in record.candidates], Decimal(record.random))
