"""Supplier settlement: what each supplier delivered in a period and what it costs (refunds deducted)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.mall.models import Redemption, Reward


def supplier_settlement(session: Session, program_id: int, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Per supplier and reward: units fulfilled in [start, end) less units refunded, points, cost in ¥."""
    out: dict[tuple[str, str], dict] = defaultdict(lambda: {"units": 0, "points": 0, "cost": Decimal(0)})
    q = (select(Redemption, Reward).join(Reward, Reward.id == Redemption.reward_id)
         .where(Redemption.program_id == program_id, Redemption.status.in_(("fulfilled", "refunded")),
                Redemption.updated_at >= start, Redemption.updated_at < end))
    for r, reward in session.execute(q):
        sign = 1 if r.status == "fulfilled" else 0  # a refunded order is not paid for
        row = out[(reward.supplier or "—", reward.code)]
        row["units"] += sign * r.quantity
        row["points"] += sign * r.points
        row["cost"] += sign * r.quantity * reward.cost
        row["name"] = reward.name
    return [{"supplier": sup, "reward": code, "name": v["name"], "units": v["units"], "points": v["points"],
             "cost": str(v["cost"].quantize(Decimal("0.01")))}
            for (sup, code), v in sorted(out.items()) if v["units"]]
