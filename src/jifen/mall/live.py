"""What the mall sells against the clock, as the console shows it live: flash sales (time-limited rewards
with a limited stock — a sale window, or a discount that runs out) and lotteries with each prize's stock, and
the stock figures alone for a page to poll."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from jifen.mall.models import LotteryDraw, LotteryPool, LotteryPrize, Reward
from jifen.programs.models import Program


def flash_sales(session: Session, program: Program, now: dt.datetime) -> list[Reward]:
    """Listed rewards with a limited stock whose sale or discount has not ended, soonest ending first."""
    ends = func.coalesce(Reward.ends_at, Reward.discount_until)
    return list(session.scalars(select(Reward).where(
        Reward.program_id == program.id, Reward.active.is_(True), Reward.honeypot.is_(False),
        Reward.stock.is_not(None),
        or_(Reward.ends_at > now, (Reward.discount_pct > 0) & (Reward.discount_until > now)))
        .order_by(ends, Reward.code)))


def lotteries(session: Session, program: Program) -> list[dict]:
    """Every lottery with its prizes (stock left, None = unlimited) and draws so far."""
    draws = dict(session.execute(select(LotteryDraw.pool_id, func.count()).join(
        LotteryPool, LotteryPool.id == LotteryDraw.pool_id).where(LotteryPool.program_id == program.id)
        .group_by(LotteryDraw.pool_id)).all())
    pools = list(session.scalars(select(LotteryPool).where(LotteryPool.program_id == program.id)
                                 .order_by(LotteryPool.code)))
    prizes = session.scalars(select(LotteryPrize).where(LotteryPrize.pool_id.in_([p.id for p in pools]))
                             .order_by(LotteryPrize.pool_id, LotteryPrize.id)).all()
    by_pool: dict[int, list[LotteryPrize]] = {}
    for prize in prizes:
        by_pool.setdefault(prize.pool_id, []).append(prize)
    return [{"pool": p, "prizes": by_pool.get(p.id, []), "draws": draws.get(p.id, 0)} for p in pools]


def stock_now(session: Session, program: Program, now: dt.datetime) -> dict:
    """Stock left and units sold of each flash sale, stock left of each lottery prize: what the page polls."""
    return {"at": now.isoformat(),
            "rewards": {r.code: {"stock": r.stock, "sold": r.sold} for r in flash_sales(session, program, now)},
            "prizes": {str(prize.id): prize.stock for pool in lotteries(session, program) for prize in pool["prizes"]}}
