"""A multi-armed bandit over offers (seed 004): Thompson sampling on Beta-Bernoulli arms. Each choice draws
one sample from every arm's posterior Beta(1 + rewards, 1 + misses) and shows the best; conversions are
reported back. The same `pick` drives the stored bandit and the simulation that shows it converging.

Counts are changed by single UPDATE … SET n = n + 1 statements, so concurrent choices and rewards never
lose a count; a reward is accepted only while the arm has more pulls than rewards."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jifen.campaigns.models import BanditArm
from jifen.errors import Conflict, NotFound
from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

_PBEST_DRAWS = 4000


def pick(pulls: np.ndarray, rewards: np.ndarray, rng: np.random.Generator) -> int:
    return int(np.argmax(rng.beta(1 + rewards, 1 + pulls - rewards)))


def create(session: Session, program_id: int, key: str, arms: list[str], now: dt.datetime) -> list[BanditArm]:
    if session.scalar(select(BanditArm.arm).where(BanditArm.program_id == program_id, BanditArm.bandit == key).limit(1)):
        raise Conflict(f"bandit {key!r} exists", code="bandit_exists")
    rows = [BanditArm(program_id=program_id, bandit=key, arm=a, position=i, pulls=0, rewards=0, created_at=now)
            for i, a in enumerate(arms)]
    session.add_all(rows)
    session.flush()
    return rows


def arms(session: Session, program_id: int, key: str) -> list[BanditArm]:
    found = list(session.scalars(select(BanditArm).where(BanditArm.program_id == program_id, BanditArm.bandit == key)
                                 .order_by(BanditArm.position)))
    if not found:
        raise NotFound(f"no bandit {key!r}", code="unknown_bandit")
    return found


def keys(session: Session, program_id: int) -> list[str]:
    return list(session.scalars(select(BanditArm.bandit).where(BanditArm.program_id == program_id).distinct()
                                .order_by(BanditArm.bandit)))


def choose(session: Session, program_id: int, key: str, rng: np.random.Generator | None = None) -> str:
    found = arms(session, program_id, key)
    n = np.array([a.pulls for a in found], dtype=float)
    r = np.array([a.rewards for a in found], dtype=float)
    arm = found[pick(n, r, rng or np.random.default_rng())].arm
    session.execute(update(BanditArm).where(BanditArm.program_id == program_id, BanditArm.bandit == key,
                                            BanditArm.arm == arm).values(pulls=BanditArm.pulls + 1))
    return arm


def reward(session: Session, program_id: int, key: str, arm: str, converted: bool) -> dict:
    """A shown offer's outcome. A conversion counts once per pull (more rewards than pulls is refused)."""
    if arm not in {a.arm for a in arms(session, program_id, key)}:
        raise NotFound(f"bandit {key!r} has no arm {arm!r}", code="unknown_arm")
    if converted:
        done = session.execute(update(BanditArm).where(
            BanditArm.program_id == program_id, BanditArm.bandit == key, BanditArm.arm == arm,
            BanditArm.rewards < BanditArm.pulls).values(rewards=BanditArm.rewards + 1))
        if not getattr(done, "rowcount", 0):
            raise Conflict(f"arm {arm!r} has no pull left to reward", code="no_pull_to_reward")
    return {"bandit": key, "arm": arm, "converted": converted}


def summary(key: str, found: list[BanditArm], seed: int = 0) -> dict:
    """Per arm: pulls, conversions, posterior mean, probability of being the best (Monte Carlo); and the
    estimated regret: pulls × (best posterior mean − the arm's), summed — conversions lost to exploring."""
    n = np.array([a.pulls for a in found], dtype=float)
    r = np.array([a.rewards for a in found], dtype=float)
    mean = (1 + r) / (2 + n)
    draws = np.random.default_rng(seed).beta(1 + r, 1 + n - r, size=(_PBEST_DRAWS, len(found)))
    p_best = np.bincount(draws.argmax(axis=1), minlength=len(found)) / _PBEST_DRAWS
    best = int(mean.argmax())
    return {"key": key, "pulls": int(n.sum()), "best": found[best].arm,
            "estimated_regret": round(float((n * (mean[best] - mean)).sum()), 2),
            "arms": [{"arm": a.arm, "pulls": a.pulls, "conversions": a.rewards, "mean": round(float(m), 4),
                      "p_best": round(float(p), 4)} for a, m, p in zip(found, mean, p_best, strict=True)]}


def simulate(rates: list[float], rounds: int, seed: int = 0) -> dict:
    """Thompson sampling against known conversion rates: pulls per arm, the best arm's share of the last
    tenth of rounds, and the cumulative (expected) regret — rounds × best rate − Σ the chosen arms' rates."""
    rng = np.random.default_rng(seed)
    p = np.asarray(rates, dtype=float)
    n, r = np.zeros(len(p)), np.zeros(len(p))
    chosen = np.empty(rounds, dtype=int)
    for t in range(rounds):
        arm = pick(n, r, rng)
        chosen[t] = arm
        n[arm] += 1
        r[arm] += rng.random() < p[arm]
    regret = np.cumsum(p.max() - p[chosen])
    tail = chosen[-max(1, rounds // 10):]
    marks = sorted({max(1, rounds * k // 10) for k in range(1, 11)})
    return {"rounds": rounds, "pulls": [int(x) for x in n], "best_arm": int(p.argmax()),
            "best_share_last_tenth": round(float((tail == p.argmax()).mean()), 4), "regret": round(float(regret[-1]), 2),
            "regret_curve": [{"round": float(m), "regret": round(float(regret[m - 1]), 2)} for m in marks]}
