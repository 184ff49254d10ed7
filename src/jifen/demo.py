"""The demo programme: ~2,000 members with 90 days of purchases, check-ins, redemptions, refunds and
gifts, written through the ledger operations (no demo-only path), plus seed 002's co-branded
programme with two wallets (¥1 → 1 platform point + 0.5 brand point)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jifen.db import run_in_transaction, utcnow
from jifen.errors import InsufficientPoints
from jifen.ledger import operations as ops
from jifen.ledger.engine import member_accounts
from jifen.ledger.jobs import settle_due
from jifen.members.models import Member
from jifen.members.service import create_member
from jifen.programs.models import Program
from jifen.programs.service import create_program, ensure_default_program, get_wallet

RETURN_WINDOW = dt.timedelta(days=7)
TZ = ZoneInfo("Asia/Shanghai")
CHANNELS = ("app", "h5", "mini_program", "pos", "ecommerce")
REWARDS = [  # (name, points): what demo members redeem (100 points = ¥1)
    ("積分抽獎一次", 50), ("公益捐贈 · 一份午餐", 200), ("滿30減3 優惠券", 300),
    ("滿50減5 優惠券", 500), ("滿100減12 優惠券", 1200), ("星巴克中杯券", 2800), ("月度免運卡", 5000),
    ("品牌保溫杯", 3600), ("公益捐贈 · 植樹一棵", 1000), ("視頻會員月卡", 1500),
]


@dataclass
class DemoReport:
    members: int = 0
    entries: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.entries[kind] = self.entries.get(kind, 0) + 1


def purchase_points(amount: Decimal) -> int:
    """Seed 001: ¥1 = 1 point rounded down, +10% on a purchase over ¥100."""
    base = int(amount.to_integral_value(ROUND_DOWN))
    return base + (int((amount * Decimal("0.1")).to_integral_value(ROUND_DOWN)) if amount > 100 else 0)


def _amount(rng: random.Random) -> Decimal:
    return Decimal(str(round(min(rng.lognormvariate(4.9, 0.8), 5000.0), 2)))


def _events(rng: random.Random, members: int, days: int, start: dt.datetime) -> list[tuple]:
    """(time, kind, member index) for every member's activity, in time order."""
    events = []
    for i in range(members):
        buyer = rng.random()
        purchases = rng.choices([0, 1, 2, 4, 8, 15], weights=[15, 25, 25, 20, 10, 5])[0]
        for _ in range(purchases):
            events.append((start + dt.timedelta(seconds=rng.uniform(0, days * 86400)), "purchase", i))
        if buyer < 0.15:  # check-in regulars, with streaks and gaps, on the programme's calendar days
            day, streak_prob = rng.randrange(0, days), rng.uniform(0.75, 0.97)
            midnight = dt.datetime.combine(start.astimezone(TZ).date(), dt.time(), TZ)
            while day < days:
                at = midnight + dt.timedelta(days=day, hours=rng.uniform(7, 23))
                if at < start + dt.timedelta(days=days):
                    events.append((at, "check_in", i))
                day += 1 if rng.random() < streak_prob else rng.randrange(2, 6)
        for kind, chance in (("gift", 0.04), ("redeem", 0.35), ("redeem", 0.15)):
            if rng.random() < chance:
                events.append((start + dt.timedelta(seconds=rng.uniform(0, days * 86400)), kind, i))
    events.sort()
    return events


def seed_demo(factory: sessionmaker[Session], members: int = 2000, days: int = 90, seed: int = 42,
              progress: Callable[[int, int], None] | None = None) -> DemoReport:
    rng, fake = random.Random(seed), Faker("zh_CN")
    Faker.seed(seed)
    now = utcnow()
    start = now - dt.timedelta(days=days)
    report = DemoReport(members=members)

    def add_members(s: Session) -> list[str]:
        program = ensure_default_program(s)
        ids = []
        for i in range(members):
            mid = f"M{100001 + i}"
            create_member(s, program, mid, name=fake.name(), phone=fake.phone_number(), email=fake.email(),
                          attributes={"city": fake.city_name(), "channel": rng.choice(CHANNELS)},
                          joined_at=start - dt.timedelta(days=rng.randrange(0, 700)))
            ids.append(mid)
        return ids

    ids = run_in_transaction(factory, add_members)
    events = _events(rng, members, days, start)
    state = {"streak": {}, "last_day": {}, "purchases": [], "orders": 0}

    def apply(s: Session, batch: list[tuple]) -> None:
        program = s.scalar(select(Program).where(Program.code == "default"))
        wallet = get_wallet(s, program, None)
        for at, kind, i in batch:
            # The clock is the event's own time: the history unfolds as it would have, pending
            # points maturing and holds settling on the days they did.
            sc = ops.Scope(s, program, wallet, at, actor="demo")
            member = s.scalar(select(Member).where(Member.program_id == program.id, Member.member_id == ids[i]))
            _apply_event(sc, rng, state, report, at, kind, i, member, ids)

    done = 0
    for day, todays in itertools.groupby(events, key=lambda e: e[0].astimezone(TZ).date()):
        todays = list(todays)
        run_in_transaction(factory, lambda s, b=todays: apply(s, b))
        # The nightly job: return windows that closed today release their pending points.
        settle_due(factory, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), TZ))
        done += len(todays)
        if progress:
            progress(done, len(events))
    run_in_transaction(factory, lambda s: _seed_cobrand(s, rng, fake, now, start, report))
    settle_due(factory, now)  # what the job runner would have done by now: mature past return windows
    return report


def _apply_event(sc, rng, state, report, at, kind, i, member, ids) -> None:
    if kind == "purchase":
        state["orders"] += 1
        amount = _amount(rng)
        order = f"SO{at:%Y%m%d}{state['orders']:06d}"
        pending = at + RETURN_WINDOW  # points stay pending while the order can still be returned
        entry = ops.award(sc, member, purchase_points(amount), pending_until=pending,
                          reference=order, reason=f"購物 ¥{amount} ({rng.choice(CHANNELS)})")
        report.count("purchase")
        if rng.random() < 0.06:  # a refund within the return window: full or partial
            share = rng.choice([Decimal(1), Decimal("0.5"), Decimal("0.3")])
            ops.reverse(sc, entry.id, max(1, int(entry.points * share)), reason=f"退貨 {order}")
            report.count("refund")
        return
    if kind == "check_in":
        day = at.astimezone(TZ).date()
        last = state["last_day"].get(i)
        streak = state["streak"].get(i, 0) + 1 if last == day - dt.timedelta(days=1) else 1
        state["streak"][i], state["last_day"][i] = streak, day
        ops.award(sc, member, 5, reason="每日簽到", reference=f"checkin:{day}")
        report.count("check_in")
        if streak % 7 == 0:
            ops.award(sc, member, 50, reason="連續簽到7天獎勵", reference=f"streak:{day}")
            report.count("streak_bonus")
        return
    if kind == "redeem":
        _redeem(sc, rng, report, member)
        return
    if kind == "gift":
        friend = sc.session.scalar(select(Member).where(
            Member.program_id == sc.program.id, Member.member_id == ids[(i + rng.randrange(1, len(ids))) % len(ids)]))
        try:
            ops.transfer(sc, member, friend, rng.choice([50, 100, 200]), reason="好友贈送積分")
            report.count("gift")
        except InsufficientPoints:
            pass


def _redeem(sc, rng, report, member) -> None:
    """Redeem the dearest reward the member can afford: hold, then fulfil (or cancel)."""
    available = member_accounts(sc.session, member.id, sc.wallet.id)["available"].balance
    affordable = [r for r in REWARDS if r[1] <= available]
    if not affordable:
        return
    name, cost = max(affordable, key=lambda r: (r[1], rng.random()))
    h = ops.hold(sc, member, cost, reference=f"兌換 {name}")
    if rng.random() < 0.9:
        ops.capture(sc, h.id)
        report.count("redemption")
    else:
        ops.release(sc, h.id)
        report.count("cancelled_redemption")


def _seed_cobrand(s: Session, rng, fake, now, start, report) -> None:
    """Seed 002: a co-branded programme crediting 1 platform point + 0.5 brand point per ¥1."""
    program = create_program(s, "cobrand", "聯名積分計劃", wallets=[("platform", "平台積分"), ("brand", "品牌積分")],
                             expiry_months=12)
    platform, brand = get_wallet(s, program, "platform"), get_wallet(s, program, "brand")
    members = [create_member(s, program, f"C{200001 + i}", name=fake.name(), phone=fake.phone_number(),
                             joined_at=start) for i in range(200)]
    span = (now - start).total_seconds() - 60
    purchases = sorted((start + dt.timedelta(seconds=rng.uniform(0, span)), i)
                       for i in range(len(members)) for _ in range(rng.randrange(1, 5)))
    for at, i in purchases:
        amount = _amount(rng)
        for wallet, points in ((platform, int(amount)), (brand, int(amount / 2))):
            if points:
                ops.award(ops.Scope(s, program, wallet, at, "demo"), members[i], points,
                          reference=f"CB{i}-{at:%m%d%H%M}", reason=f"聯名消費 ¥{amount}")
        report.count("cobrand_purchase")


def demo_present(s: Session) -> bool:
    return bool(s.scalar(select(func.count()).select_from(Member)))
