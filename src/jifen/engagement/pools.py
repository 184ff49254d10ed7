"""Social pooling (seed 002): the owner opens a pool for a reward; friends (and the owner) contribute
points, each contribution held; when the pool reaches the reward's price the stock is reserved, every
hold captured and the reward redeemed for the owner; a pool that times out releases every hold."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.db import owned
from jifen.engagement.models import Pool, PoolContribution
from jifen.errors import Conflict, InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.mall import service as mall
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.risk.restrictions import ensure_unrestricted

MAX_HOURS = 72


@ops.atomic
def open_pool(sc: ops.Scope, owner: Member, reward: Reward, hours: int) -> Pool:
    if not 1 <= hours <= MAX_HOURS:
        raise InvalidRequest(f"a pool runs 1 to {MAX_HOURS} hours", code="invalid_duration")
    mall.check_eligible(sc.program, reward, owner, sc.now)
    # The catalogue price, not a member's (flows/pricing.py): several members pay, and a campaign's
    # double-value offer is one member's, counted against its budget when that member redeems.
    pool = Pool(program_id=sc.program.id, owner_pk=owner.id, reward_id=reward.id,
                target=mall.unit_price(sc.program, reward, sc.now)[0], status="open",
                expires_at=sc.now + dt.timedelta(hours=hours), created_at=sc.now)
    sc.session.add(pool)
    sc.session.flush()
    return pool


def get_pool(session: Session, program_id: int, pool_id: int) -> Pool:
    return owned(session, Pool, pool_id, program_id, "pool", "unknown_pool")


def raised(session: Session, pool: Pool) -> int:
    return cast(int, session.scalar(select(func.coalesce(func.sum(PoolContribution.points), 0)).where(
        PoolContribution.pool_id == pool.id)))


@ops.atomic
def contribute(sc: ops.Scope, pool: Pool, member: Member, points: int) -> Pool:
    lock_members(sc.session, [pool.owner_pk, member.id])  # contributions to one pool queue on its owner
    sc.session.refresh(pool)
    if pool.status != "open" or pool.expires_at <= sc.now:
        raise Conflict(f"pool {pool.id} is {pool.status if pool.status != 'open' else 'expired'}", code="pool_closed")
    need = pool.target - raised(sc.session, pool)
    if not 1 <= points <= need:
        raise InvalidRequest(f"the pool needs 1 to {need} more points", code="invalid_points")
    ensure_unrestricted(sc.session, [member.id], sc.now)
    hold = ops.hold(sc, member, points, reference=f"pool {pool.id}")
    sc.session.add(PoolContribution(pool_id=pool.id, member_pk=member.id, points=points, hold_id=hold.id,
                                    created_at=sc.now))
    sc.session.flush()
    if points == need:
        _complete(sc, pool)
    return pool


def _complete(sc: ops.Scope, pool: Pool) -> None:
    reward = sc.session.get_one(Reward, pool.reward_id)
    contributions = list(sc.session.scalars(select(PoolContribution).where(PoolContribution.pool_id == pool.id)
                                            .order_by(PoolContribution.id)))
    if not mall.reserve_stock(sc.session, reward, 1):
        for c in contributions:
            ops.release(sc, c.hold_id)
        pool.status = "failed"  # out of stock: everyone gets their points back
        return
    for c in contributions:
        ops.capture(sc, c.hold_id)
    owner_hold = next((c.hold_id for c in contributions if c.member_pk == pool.owner_pk), contributions[0].hold_id)
    r = Redemption(program_id=sc.program.id, member_pk=pool.owner_pk, reward_id=reward.id, quantity=1,
                   points=pool.target, tier=None, status="fulfilled", hold_id=owner_hold,
                   address={"pooled": pool.id}, created_at=sc.now, updated_at=sc.now)
    sc.session.add(r)
    sc.session.flush()
    pool.status, pool.redemption_id = "completed", r.id


def expire_due(sc: ops.Scope) -> int:
    done = 0
    for pool in sc.session.scalars(select(Pool).where(Pool.program_id == sc.program.id, Pool.status == "open",
                                                      Pool.expires_at <= sc.now)):
        lock_members(sc.session, [pool.owner_pk])
        for c in sc.session.scalars(select(PoolContribution).where(PoolContribution.pool_id == pool.id)):
            ops.release(sc, c.hold_id)
        pool.status = "expired"
        done += 1
    return done


def view(session: Session, pool: Pool) -> dict:
    rows = session.execute(select(Member.member_id, func.sum(PoolContribution.points))
                           .join(Member, Member.id == PoolContribution.member_pk)
                           .where(PoolContribution.pool_id == pool.id).group_by(Member.member_id)
                           .order_by(Member.member_id)).all()
    return {"id": pool.id, "reward": session.get_one(Reward, pool.reward_id).code, "target": pool.target,
            "raised": sum(int(p) for _, p in rows), "status": pool.status, "expires_at": pool.expires_at.isoformat(),
            "contributors": [{"member_id": m, "points": int(p)} for m, p in rows],
            "redemption_id": pool.redemption_id}
