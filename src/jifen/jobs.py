"""The background jobs of `jifen serve` (and `jifen ledger jobs`): ledger upkeep every tick, the
periodic tier evaluation once per evaluation period of each programme."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jifen.db import run_in_transaction, utcnow
from jifen.ledger.jobs import JobReport, release_stale_holds, settle_due
from jifen.programs import tiers
from jifen.programs.models import Program

log = logging.getLogger("jifen.jobs")


def evaluate_tiers_due(factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Programmes whose tier evaluation for the current period had not run yet; runs them."""
    codes = run_in_transaction(factory, lambda s: list(s.scalars(select(Program.code).order_by(Program.id))))
    done = 0
    for code in codes:
        def one(s: Session, code=code) -> bool:
            program = s.scalar(select(Program).where(Program.code == code).with_for_update())
            return tiers.evaluate_if_due(s, program, now) is not None

        done += run_in_transaction(factory, one)
    return done


def run_all(factory: sessionmaker[Session], now: dt.datetime | None = None) -> JobReport:
    now = now or utcnow()
    holds = release_stale_holds(factory, now)
    report = settle_due(factory, now)
    report.holds_released = holds.holds_released
    report.tier_evaluations = evaluate_tiers_due(factory, now)
    return report


def loop_forever(factory: sessionmaker[Session], interval: float, stop) -> None:
    """The in-process job runner of the embedded default (`jifen serve`)."""
    while not stop.wait(interval):
        try:
            run_all(factory)
        except Exception:  # keep serving; the next tick retries
            log.exception("background jobs failed; retrying at the next tick")
