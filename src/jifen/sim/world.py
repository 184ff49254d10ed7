"""The simulated programme: rules simple enough for an independent model to price (¥1 → 1 point rounded
down, 5 points a check-in), purchase points pending for 2 days, points valid 1 month (so maturity and expiry
both happen within a run), tiers evaluated monthly, risk control watching but never intervening (its
verdicts are not what the model checks); its members and rewards; a fresh database for each replay."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from jifen.db import make_engine, make_sessionmaker, run_in_transaction
from jifen.errors import InvalidRequest
from jifen.mall.models import Reward
from jifen.members.models import Member
from jifen.members.service import create_member
from jifen.models import metadata
from jifen.programs.config import ProgramConfig
from jifen.programs.models import Program
from jifen.programs.service import apply_config, ensure_default_program, get_program
from jifen.sim.plan import REWARDS

START = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
PENDING_DAYS, CHECK_IN_POINTS, EXPIRY_MONTHS = 2, 5, 1

CONFIG = {
    "code": "default", "name": "模擬", "allow_debt": False,
    "expiry": {"policy": "rolling", "months": EXPIRY_MONTHS}, "pending_days": {"purchase": PENDING_DAYS},
    "tiers": {"basis": "spend", "window_days": 365, "evaluation": "monthly", "levels": [
        {"code": "normal", "name": "普通", "threshold": 0}, {"code": "silver", "name": "銀卡", "threshold": 800}]},
    "rules": {"effective_from": "2020-01-01T00:00:00+08:00", "rules": [
        {"code": "purchase_base", "events": ["purchase"], "award": {"per_yuan": 1, "rounding": "down"}},
        {"code": "daily_check_in", "events": ["check_in"], "award": {"fixed": CHECK_IN_POINTS}}]},
    "risk": {"earn_points_per_minute": {"limit": 100, "action": "allow"},
             "redemptions_per_hour": {"limit": 5, "action": "allow"},
             "accounts_per_device": {"limit": 5, "action": "allow"}, "anomaly_weight": 0,
             "weights": {k: 0 for k in ("earn_per_minute", "redemptions_per_hour", "shared_device", "shared_ip",
                                        "new_account", "restricted_before", "honeypot")}},
}


def populate(factory: sessionmaker[Session], members: list[str]) -> None:
    """The programme, its members and rewards, at the simulation's start."""
    def tx(s: Session) -> None:
        apply_config(s, ProgramConfig.model_validate(CONFIG), now=START - dt.timedelta(days=1), actor="sim")
        program = get_program(s, "default")
        for mid in members:
            create_member(s, program, mid, joined_at=START - dt.timedelta(days=30))
        s.add_all(Reward(program_id=program.id, code=code, name=code, kind=kind, category="sim", points=points,
                         stock=stock, stock_total=stock, sold=0, active=True, coupon={"valid_days": 30} if kind == "coupon"
                         else {}, tier_shares={}, created_at=START - dt.timedelta(days=1))
                  for code, (kind, points, stock) in REWARDS.items())

    run_in_transaction(factory, tx)


def ensure_empty(url: str) -> None:
    """A simulation writes thousands of rows and wipes them between replays: only on a database without members,
    or one an earlier simulation left."""
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            names = set(s.scalars(select(Program.name)))
            if s.scalar(select(func.count()).select_from(Member)) and names != {CONFIG["name"]}:
                raise InvalidRequest("the simulation needs a database without members (a scratch one: it is wiped "
                                     "between replays)", code="database_not_empty")
    finally:
        engine.dispose()


def wipe(url: str) -> None:
    """Every table emptied, the default programme back (the database was checked empty before the first run)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(metadata.sorted_tables):
                    conn.execute(table.delete())
        run_in_transaction(make_sessionmaker(engine), ensure_default_program)
    finally:
        engine.dispose()
