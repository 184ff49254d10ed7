"""The background jobs of `jifen serve` (in-process, the embedded default) and `jifen worker`: ledger
upkeep, tier evaluations due, expiry reminders, expired red packets and pools, the notification dispatcher, marketing
automations, and the daily retention purge."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jifen.db import run_in_transaction, utcnow
from jifen.engagement import pools, red_packets
from jifen.flows import automate
from jifen.ledger import operations as ops
from jifen.ledger.jobs import JobReport, release_stale_holds, settle_due
from jifen.members import retention
from jifen.notify import dispatcher
from jifen.notify.reminders import send_reminders
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet

log = logging.getLogger("jifen.jobs")


def _each_program(factory: sessionmaker[Session], work) -> int:
    """Run work(session, program) for every programme, one transaction each (the programme row locked)."""
    codes = run_in_transaction(factory, lambda s: list(s.scalars(select(Program.code).order_by(Program.id))))
    done = 0
    for code in codes:
        def one(s: Session, code=code):
            return work(s, s.scalar(select(Program).where(Program.code == code).with_for_update()))

        done += run_in_transaction(factory, one) or 0
    return done


def evaluate_tiers_due(factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Programmes whose tier evaluation for the current period had not run yet; runs them."""
    return _each_program(factory, lambda s, p: tiers.evaluate_if_due(s, p, now) is not None)


def remind_expiring(factory: sessionmaker[Session], now: dt.datetime) -> int:
    return _each_program(factory, lambda s, p: send_reminders(s, p, now))


def expire_red_packets(factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Red packets and pools past their time: unclaimed shares and pooled points go back."""
    def work(s, program):
        sc = ops.Scope(s, program, s.scalar(select(Wallet).where(
            Wallet.program_id == program.id, Wallet.is_default.is_(True))), now, actor="jobs")
        return red_packets.expire_due(sc) + pools.expire_due(sc)

    return _each_program(factory, work)


def train_risk_models(factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Daily: each programme's anomaly model retrained on its recent transactions (when there are enough)."""
    from jifen.risk.anomaly import train_due

    return _each_program(factory, lambda s, p: train_due(s, p, now))


def scan_risk_graphs(factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Hourly: each programme's account graph scanned, new findings' members into the review queue."""
    from jifen.risk.scan import scan_due

    return _each_program(factory, lambda s, p: scan_due(s, p, now))


def run_all(factory: sessionmaker[Session], now: dt.datetime | None = None) -> JobReport:
    now = now or utcnow()
    holds = release_stale_holds(factory, now)
    report = settle_due(factory, now)
    report.holds_released = holds.holds_released
    report.tier_evaluations = evaluate_tiers_due(factory, now)
    report.reminders = remind_expiring(factory, now)
    expire_red_packets(factory, now)
    report.notifications = dispatcher.run_once(factory, now)["delivered"]
    train_risk_models(factory, now)
    scan_risk_graphs(factory, now)
    automate.run_due(factory, now)
    if (purged := retention.purge_if_due(factory, now)) is not None:  # once a day: logs past their retention
        log.info("retention purge: %s", purged)
    return report


def loop_forever(factory: sessionmaker[Session], interval: float, stop, dispatch_interval: float = 2) -> None:
    """Ledger jobs every `interval` seconds, the dispatcher every `dispatch_interval` in between."""
    last = 0.0
    while not stop.wait(0 if last == 0.0 else dispatch_interval):
        try:
            if (now := utcnow().timestamp()) - last >= interval:
                run_all(factory)
                last = now
            else:
                dispatcher.run_once(factory)
        except Exception:  # keep serving; the next tick retries
            log.exception("background jobs failed; retrying at the next tick")
