"""Recommendations for one member, now: the ranker trained on the programme's recent redemptions (kept
for a few minutes per programme: training reads the whole history), the member's live balance, only rewards
they may redeem now; and seed 001's line for points about to expire ("您有1520分即將過期,可兌換價值89元的電烤箱"):
the member's lots expiring soon, and a recommended reward their balance pays for that uses those points up
(the ledger spends the soonest-expiring lots first, so any reward costing at least that much does)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.errors import Conflict, Forbidden
from jifen.flows.pricing import pricer
from jifen.lazy import lazy_import
from jifen.ledger import operations as ops
from jifen.ledger.models import Lot
from jifen.mall.models import Reward
from jifen.mall.service import check_eligible
from jifen.members.models import Member
from jifen.notify.templates import render
from jifen.programs.models import Program
from jifen.programs.service import get_wallet
from jifen.recommend import als, history, rank

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

TRAINING_DAYS = 30
FRESH_FOR = 300.0  # seconds a programme's trained ranker is reused


@dataclass
class Trained:
    history: history.History
    ranker: rank.Ranker
    factors: als.Factors  # fitted on the whole history when trained
    moment: np.datetime64  # when that was
    at: float  # (monotonic clock)

    def knows(self, member_pk: int) -> bool:
        i = int(np.searchsorted(self.history.member_pks, member_pk))
        return i < self.history.member_pks.size and int(self.history.member_pks[i]) == member_pk


# Per database engine (weakly: an engine disposed of takes its rankers along) and programme.
_cache: weakref.WeakKeyDictionary[Any, dict[int, Trained]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def trained(session: Session, program: Program, now: dt.datetime, member_pk: int | None = None) -> Trained:
    """The programme's ranker, retrained when older than FRESH_FOR or when it does not know the member."""
    with _lock:
        cache = _cache.setdefault(session.get_bind(), {})
        found = cache.get(program.id)
        if found and time.monotonic() - found.at < FRESH_FOR and (member_pk is None or found.knows(member_pk)):
            return found
        h = history.load(session, program)
        moment = history.stamp(now)
        found = cache[program.id] = Trained(h, rank.train(h, moment - np.timedelta64(TRAINING_DAYS, "D"), moment),
                                            rank.factors(h, moment), moment, time.monotonic())
        return found


def recommend(session: Session, program: Program, member: Member, now: dt.datetime, k: int = 5) -> list[dict]:
    """The k rewards the member is likeliest to redeem, best first, among those they may redeem now."""
    t = trained(session, program, now, member.id)
    h = t.history
    index = np.searchsorted(h.member_pks, [member.id])
    balance = ops.available(session, member, get_wallet(session, program, None))
    x = rank.features(h, t.moment, index, np.array([float(balance)]), t.factors)
    scores = t.ranker.scores(x)[0]
    rewards = {r.id: r for r in session.scalars(select(Reward).where(Reward.id.in_(h.reward_ids.tolist())))}
    price_of = pricer(session, program, member, now)
    out = []
    for i in np.argsort(-scores, kind="stable"):
        reward = rewards.get(int(h.reward_ids[i]))
        if reward is None or not _offered(program, reward, member, now):
            continue
        points = price_of(reward).points
        out.append({"reward": reward.code, "name": reward.name, "points": points, "value": str(reward.value),
                    "category": reward.category, "affordable": points <= balance,
                    "score": round(float(scores[i]), 4)})
        if len(out) == k:
            break
    return out


def _offered(program: Program, reward: Reward, member: Member, now: dt.datetime) -> bool:
    if reward.honeypot or (reward.stock is not None and reward.stock <= 0):
        return False
    try:
        check_eligible(program, reward, member, now)
        return True
    except (Conflict, Forbidden):
        return False


def expiring(session: Session, program: Program, member: Member, now: dt.datetime, days: int) -> tuple[int, dt.date | None]:
    """Points of the member's default wallet expiring within `days`, and the first day they are gone by."""
    wallet = get_wallet(session, program, None)
    points, first = session.execute(select(func.coalesce(func.sum(Lot.available), 0), func.min(Lot.expires_at)).where(
        Lot.member_pk == member.id, Lot.wallet_id == wallet.id, Lot.available > 0, Lot.expires_at > now,
        Lot.expires_at <= now + dt.timedelta(days=days))).one()
    if not points:
        return 0, None
    first = cast(dt.datetime, first)  # (some lot matched, so there is a first expiry)
    last_day = (first - dt.timedelta(microseconds=1)).astimezone(ZoneInfo(program.timezone)).date()
    return int(points), last_day


def expiring_offer(session: Session, program: Program, member: Member, now: dt.datetime, days: int = 30,
                   picks: list[dict] | None = None) -> dict | None:
    """Seed 001's nudge: the expiring points, the reward to spend them on, and the message as members read it."""
    points, day = expiring(session, program, member, now, days)
    if not points or day is None:
        return None
    picks = picks if picks is not None else recommend(session, program, member, now, k=20)
    affordable = [p for p in picks if p["affordable"]]
    using_up = [p for p in affordable if p["points"] >= points]
    choices = using_up or sorted(affordable, key=lambda p: -p["points"])
    reward = choices[0] if choices else None
    payload = {"points": points, "date": day.isoformat(),
               **({"reward": {"name": reward["name"], "value": reward["value"]}} if reward else {})}
    _, text = render("points.expiring", payload, (member.attributes or {}).get("lang", "zh"))
    return {"points": points, "date": day.isoformat(), "reward": reward, "message": text}
