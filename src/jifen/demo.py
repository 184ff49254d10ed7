"""The demo programme: seed 001's rules (programs/examples/seed001.yaml) and ~2,000 members with 90 days of
purchases, refunds, check-ins and invitations sent through the event intake, redemptions and gifts through
the ledger (no demo-only path), plus seed 002's co-branded programme with two wallets (¥1 → 1 platform
point + 0.5 brand point).

Its words are in the script of its locale: zh-Hans (the default: Faker's zh_CN names and addresses) or
zh-Hant (zh_TW), the programme's names and the catalogue converted by OpenCC (jifen/hanzi.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jifen import hanzi
from jifen.campaigns import experiments
from jifen.campaigns import service as campaigns
from jifen.campaigns.schemas import ArmIn, CampaignIn, Effect, ExperimentIn
from jifen.db import run_in_transaction, utcnow
from jifen.errors import InsufficientPoints, JifenError
from jifen.events.schemas import EventIn
from jifen.flows.intake import ingest
from jifen.flows.redeem import redeem
from jifen.ledger import operations as ops
from jifen.ledger.jobs import settle_due
from jifen.mall import service as mall
from jifen.mall.models import Reward
from jifen.members.models import Member
from jifen.members.service import NewMember, create_member, create_members, get_member
from jifen.programs import tiers
from jifen.programs.config import ProgramConfig, RiskConfig, load_example
from jifen.programs.service import apply_config, get_program, get_wallet
from jifen.rules.schema import Sponsor

TZ = ZoneInfo("Asia/Shanghai")
FAKER_LOCALES = {"zh-Hans": "zh_CN", "zh-Hant": "zh_TW"}
CHANNELS = ("app", "h5", "mini_program", "pos", "ecommerce")
REWARDS = [  # the demo catalogue: (code, name, kind, category, points, ¥ value, supplier, stock)
    ("lunch", "公益捐赠 · 一份午餐", "charity", "公益", 200, 2, None, None),
    ("c30", "满30减3 优惠券", "coupon", "优惠券/满减", 300, 3, None, None),
    ("c50", "满50减5 优惠券", "coupon", "优惠券/满减", 500, 5, None, None),
    ("c100", "满100减12 优惠券", "coupon", "优惠券/满减", 1200, 12, None, None),
    ("tree", "公益捐赠 · 植树一棵", "charity", "公益", 1000, 10, None, None),
    ("video", "视频会员月卡", "virtual", "虚拟/影音", 1500, 15, "腾讯视频", None),
    ("coffee", "星巴克中杯券", "virtual", "虚拟/餐饮", 2800, 30, "星巴克", None),
    ("cup", "品牌保温杯", "physical", "实物/家居/杯具", 3600, 39, "膳魔师", 400),
    ("shipping", "月度免运卡", "privilege", "权益", 5000, 50, None, None),
    ("oven", "电烤箱", "physical", "实物/家居/厨电", 8900, 89, "美的", 60),
]


@dataclass
class DemoReport:
    members: int = 0
    entries: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int = 1) -> None:
        self.entries[kind] = self.entries.get(kind, 0) + n


class Stages(Protocol):
    """Where `seed_demo` reports its progress: a stage starts (with its size when known), advances, and
    finishes with a summary (the `jifen demo` command shows a bar, or plain lines when not on a terminal)."""

    def start(self, title: str, total: int | None = None) -> None: ...

    def update(self, done: int, detail: str = "") -> None: ...

    def finish(self, summary: str = "") -> None: ...


class Silent:
    def start(self, title: str, total: int | None = None) -> None:
        pass

    def update(self, done: int, detail: str = "") -> None:
        pass

    def finish(self, summary: str = "") -> None:
        pass


TALLY = (("purchase", "purchases"), ("check_in", "check-ins"), ("refund", "refunds"), ("invite", "invitations"),
         ("redemption", "redemptions"), ("gift", "gifts"))


def tally(report: DemoReport) -> str:
    counts = [(report.entries.get(k, 0), label) for k, label in TALLY]
    return ", ".join(f"{n:,} {label[:-1] if n == 1 else label}" for n, label in counts)


CATEGORIES = ("服饰", "美妆", "食品", "数码", "母婴", "家居")


def whereabouts(i: int, channel: str | None) -> dict:
    """The member's own phone and home address as risk control sees them (`device_id`, `ip` attributes): one
    device each, a home IP shared by three members (a family); none at a store's till (the till is not theirs).
    Derived from the member's index, so the demo's random history stays as it was."""
    if channel == "pos":
        return {}
    return {"device_id": f"dev-{i * 7919 % 1_000_003:07d}", "ip": f"10.{i // 765 % 256}.{i // 3 % 255}.{i % 3 + 2}"}


def _amount(rng: random.Random) -> Decimal:
    return Decimal(str(round(min(rng.lognormvariate(4.9, 0.8), 5000.0), 2)))


def _lines(rng: random.Random, amount: Decimal) -> list[dict]:
    """One to three order lines in different categories, adding up to the order amount."""
    cats = rng.sample(CATEGORIES, rng.choice([1, 1, 2, 3]))
    cents = int(amount * 100)
    cuts = sorted(rng.sample(range(1, cents), len(cats) - 1)) if cents > len(cats) else []
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, cents])] if cuts else [cents] + [0] * (len(cats) - 1)
    return [{"sku": f"SKU{rng.randrange(10000, 99999)}", "category": c, "amount": str(Decimal(p) / 100)}
            for c, p in zip(cats, parts) if p]


def _events(rng: random.Random, members: int, days: int, start: dt.datetime) -> list[tuple]:
    """(time, kind, member index, details) for every member's activity, in time order."""
    events = []
    end = start + dt.timedelta(days=days)
    order = itertools.count(1)
    for i in range(members):
        buyer = rng.random()
        purchases = rng.choices([0, 1, 2, 4, 8, 15], weights=[15, 25, 25, 20, 10, 5])[0]
        for _ in range(purchases):
            at = start + dt.timedelta(seconds=rng.uniform(0, days * 86400))
            amount = _amount(rng)
            oid = f"SO{at:%Y%m%d}{next(order):06d}"
            events.append((at, "purchase", i, {"order_id": oid, "amount": amount, "lines": _lines(rng, amount),
                                               "channel": rng.choice(CHANNELS)}))
            if rng.random() < 0.06:  # a return inside the 7-day window: whole order or part of it
                back = at + dt.timedelta(hours=rng.uniform(2, 160))
                if back < end:
                    share = rng.choice([Decimal(1), Decimal("0.5"), Decimal("0.3")])
                    events.append((back, "refund", i, {"order_id": oid, "amount": (amount * share).quantize(
                        Decimal("0.01"))}))
        if buyer < 0.15:  # check-in regulars, with streaks and gaps, on the programme's calendar days
            day, streak_prob = rng.randrange(0, days), rng.uniform(0.75, 0.97)
            midnight = dt.datetime.combine(start.astimezone(TZ).date(), dt.time(), TZ)
            while day < days:
                at = midnight + dt.timedelta(days=day, hours=rng.uniform(7, 23))
                if start <= at < end:
                    events.append((at, "check_in", i, {"channel": rng.choice(("app", "mini_program"))}))
                day += 1 if rng.random() < streak_prob else rng.randrange(2, 6)
        if buyer > 0.93:  # a few members bring friends
            for _ in range(rng.randrange(1, 4)):
                events.append((start + dt.timedelta(seconds=rng.uniform(0, days * 86400)), "invite", i, {}))
        for kind, chance in (("gift", 0.04), ("redeem", 0.35), ("redeem", 0.15)):
            if rng.random() < chance:
                events.append((start + dt.timedelta(seconds=rng.uniform(0, days * 86400)), kind, i, {}))
    events.sort(key=lambda e: (e[0], e[2]))
    return events


def _growth(s: Session, now: dt.datetime, days: int, locale: str) -> None:
    """A campaign and an experiment for the console's campaign page: launched before the replay, so its
    events are priced under the campaign as they come (the demo's members do not react to it: its report
    shows no lift, as it should)."""
    program = get_program(s, "default")
    since = now - dt.timedelta(days=min(30, max(1, days // 3)))
    c = campaigns.create(s, program, CampaignIn(
        code="double11", name=hanzi.in_script("双十一双倍积分", locale), starts_at=since, ends_at=now + dt.timedelta(days=7),
        effect=Effect(multiplier=Decimal(2)), budget=150_000,
        sponsor=Sponsor(name=hanzi.in_script("品牌供应商", locale), share=Decimal("0.5")),
        rollout=Decimal("0.8"), holdout=Decimal("0.1")),
        now=since, actor="demo")
    campaigns.launch(s, program, c, now=since, actor="demo")
    experiments.create(s, program, ExperimentIn(
        key="reminder_copy", name=hanzi.in_script("签到提醒文案", locale), arms=[ArmIn(name="plain"), ArmIn(name="streak_bonus")],
        holdout=Decimal("0.1"), starts_at=since, ends_at=now + dt.timedelta(days=30)), now=since, actor="demo")


def example(name: str, script: str) -> ProgramConfig:
    """An example programme with its names in the script."""
    cfg = load_example(name)
    return ProgramConfig.model_validate(hanzi.in_script(cfg.model_dump(mode="json", exclude_unset=True), script))


def seed_demo(factory: sessionmaker[Session], members: int = 2000, days: int = 90, seed: int = 42,
              stages: Stages | None = None, now: dt.datetime | None = None, locale: str = "zh-Hans") -> DemoReport:
    """The demo's history over the `days` before `now` (the clock: nothing is dated after it), its names and
    addresses in the script of `locale`."""
    if locale not in FAKER_LOCALES:
        raise ValueError(f"locale is one of {', '.join(FAKER_LOCALES)}")
    stages = stages or Silent()
    rng, fake = random.Random(seed), Faker(FAKER_LOCALES[locale])
    Faker.seed(seed)
    now = now or utcnow()
    start = now - dt.timedelta(days=days)
    report = DemoReport(members=members)

    def add_members(s: Session) -> list[str]:
        cfg = example("seed001", locale)  # with maker-checker: an adjustment above ¥50 of points waits for approval
        cfg.risk = cfg.risk or RiskConfig(adjust_approval_above=APPROVAL_ABOVE)
        apply_config(s, cfg, now=start, actor="demo")
        program = get_program(s, "default")
        add_catalogue(s, program, start, locale)
        ids = [f"M{100001 + i}" for i in range(members)]
        for at in range(0, members, 500):  # (in slices: the progress bar moves)
            create_members(s, program, [
                NewMember(mid, name=fake.name(), phone=fake.phone_number(), email=fake.email(),
                          attributes={"city": fake.city_name(), "channel": rng.choice(CHANNELS)},
                          joined_at=start - dt.timedelta(days=rng.randrange(0, 700)),
                          birthday=fake.date_of_birth(minimum_age=18, maximum_age=70)) for mid in ids[at:at + 500]])
            stages.update(min(at + 500, members))
        return ids

    stages.start(f"seed 001: rules, catalogue and {members:,} members (personal data encrypted)", members)
    ids = run_in_transaction(factory, add_members)
    stages.finish(f"{members:,} members")
    stages.start("a double-points campaign and an experiment over the last weeks")
    run_in_transaction(factory, lambda s: _growth(s, now, days, locale))
    stages.finish("campaign double11 (rollout 80 %, holdout 10 %, half paid by a supplier), experiment reminder_copy")
    events = _events(rng, members, days, start)

    def apply(s: Session, batch: list[tuple]) -> None:
        program = get_program(s, "default")
        wallet = get_wallet(s, program, None)
        # Member events go to the intake in batches, as a till or an app would send them. A batch is sent
        # before a redemption or a gift of a member with events in it (whose balance needs them); the other
        # members' events wait, since nothing of theirs is touched in between. A refund and its member's
        # other events go in different batches (the intake takes such a member's events one by one).
        queued: list[EventIn] = []
        waiting: set[int] = set()
        refunding: set[int] = set()

        def flush():
            if queued:
                ingest(s, program, queued, now=queued[-1].occurred_at, actor="demo")
                queued.clear()
                waiting.clear()
                refunding.clear()

        for at, kind, i, details in batch:
            if kind in ("purchase", "refund", "check_in"):
                if i in (waiting if kind == "refund" else refunding):
                    flush()
                if kind == "refund":
                    refunding.add(i)
                tag = details.get("order_id") or f"{at:%Y%m%d%H%M%S}"
                queued.append(EventIn(event_id=f"{kind}-{ids[i]}-{tag}", member_id=ids[i], type=kind,
                                      occurred_at=at, **details,
                                      attributes=whereabouts(i, details.get("channel"))))
                waiting.add(i)
                report.count(kind)
                continue
            if kind == "invite":  # a new member (touched by nobody yet) and the inviter's event, queued
                friend = f"M{100001 + len(ids)}"
                create_member(s, program, friend, name=fake.name(), phone=fake.phone_number(), joined_at=at)
                ids.append(friend)
                queued.append(EventIn(event_id=f"invite-{ids[i]}-{friend}", member_id=ids[i], type="invite",
                                      occurred_at=at, attributes={"invitee": friend} | whereabouts(i, "app")))
                waiting.add(i)
                report.count("invite")
                continue
            other = (i + rng.randrange(1, len(ids))) % len(ids) if kind == "gift" else i
            if {i, other} & waiting:
                flush()
            # The clock is the event's own time: the history unfolds as it would have, pending
            # points maturing and holds settling on the days they did.
            sc = ops.Scope(s, program, wallet, at, actor="demo")
            _apply_event(sc, rng, fake, report, kind, i, other, ids, whereabouts(i, "app"), locale)
        flush()

    stages.start(f"replaying {days} days: {len(events):,} member actions through the intake, ledger and mall",
                 len(events))
    done = 0
    for day, todays in itertools.groupby(events, key=lambda e: e[0].astimezone(TZ).date()):
        todays = list(todays)
        # mypy cannot infer a lambda with a default argument (binding the loop's batch) against Callable[[Session], T].
        run_in_transaction(factory, lambda s, b=todays: apply(s, b))  # type: ignore[misc]
        # The nightly job: return windows that closed today release their pending points. Today's night has
        # not come yet: run at the clock instead (at midnight, up to a day ahead, it dated `mature` entries in
        # the future and matured points whose return window was still open).
        settle_due(factory, min(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), TZ), now))
        done += len(todays)
        stages.update(done, f"{day:%Y-%m-%d}: {tally(report)}")
    stages.finish(tally(report))
    stages.start("seed 002: the co-branded programme, 200 members and their purchases")
    run_in_transaction(factory, lambda s: _seed_cobrand(s, rng, fake, now, start, report, locale))
    stages.finish(f"{report.entries.get('cobrand_purchase', 0):,} purchases")
    stages.start("risk: a point farm and a referral ring, then the account-graph scan")
    queued = run_in_transaction(factory, lambda s: _seed_abuse(s, fake, now, report))
    stages.finish(f"{queued} accounts sent to the review queue")
    stages.start("tasks, a lottery and teams")
    drawn = run_in_transaction(factory, lambda s: _seed_engagement(s, rng, now, ids, locale))
    stages.finish(f"{len(TASKS)} tasks, lottery lucky_wheel ({drawn} draws), {len(TEAMS)} teams")
    stages.start("maturing points past their return window, evaluating tiers")
    settled = settle_due(factory, now)  # what the job runner would have done by now: mature past return windows
    moved = run_in_transaction(factory, lambda s: tiers.evaluate(s, get_program(s, "default"), now))
    stages.finish(f"{settled.entries:,} entries; tiers: {moved.get('upgraded', 0):,} upgraded, "
                  f"{moved.get('downgraded', 0):,} downgraded, {moved.get('members', 0):,} members evaluated")
    return report


def _apply_event(sc, rng, fake, report, kind, i, other, ids, where: dict, locale: str) -> None:
    """A redemption or a gift (to member `other`), through the mall and the ledger."""
    member = get_member(sc.session, sc.program, ids[i])
    if kind == "redeem":
        _redeem(sc, rng, report, member, fake, where)
        return
    if kind == "gift":
        friend = get_member(sc.session, sc.program, ids[other])
        try:
            ops.transfer(sc, member, friend, rng.choice([50, 100, 200]), reason=hanzi.in_script("好友赠送积分", locale))
            report.count("gift")
        except InsufficientPoints:
            pass


def add_catalogue(s: Session, program, now, locale: str = "zh-Hans") -> None:
    for code, name, kind, category, points, value, supplier, stock in hanzi.in_script(REWARDS, locale):
        s.add(Reward(program_id=program.id, code=code, name=name, kind=kind, category=category, points=points,
                     value=Decimal(value), cost=Decimal(value) * Decimal("0.7"), supplier=supplier, stock=stock,
                     stock_total=stock, sold=0, coupon={"threshold": value * 10, "discount": value, "valid_days": 30}
                     if kind == "coupon" else {}, tier_shares={}, active=True, created_at=now))
    s.flush()


def _redeem(sc, rng, report, member, fake, where: dict) -> None:
    """Redeem the dearest reward the member can afford through the mall; physical goods ship (or the
    order is cancelled) — the same service as POST /v1/redemptions."""
    available = ops.available(sc.session, member, sc.wallet)
    affordable = [r for r in REWARDS if r[4] <= available]
    if not affordable:
        return
    code = max(affordable, key=lambda r: (r[4], rng.random()))[0]
    reward = mall.get_reward(sc.session, sc.program, code)
    address = {"name": member.name, "line": fake.address()} if reward.kind == "physical" else None
    try:
        order = redeem(sc, member, reward, 1, address, device_id=where.get("device_id"), ip=where.get("ip"))
    except JifenError:  # out of stock, say
        report.count("refused_redemption")
        return
    if order.status == "held":
        if rng.random() < 0.9:
            mall.fulfil(sc, order)
        else:
            mall.cancel(sc, order)
            report.count("cancelled_redemption")
            return
    report.count("redemption")


def _seed_cobrand(s: Session, rng, fake, now, start, report, locale: str) -> None:
    """Seed 002: a co-branded programme crediting 1 platform point + 0.5 brand point per ¥1."""
    apply_config(s, example("cobrand", locale), now=start, actor="demo")
    program = get_program(s, "cobrand")
    ids = [create_member(s, program, f"C{200001 + i}", name=fake.name(), phone=fake.phone_number(),
                         joined_at=start).member_id for i in range(200)]
    span = (now - start).total_seconds() - 60
    purchases = sorted((start + dt.timedelta(seconds=rng.uniform(0, span)), i)
                       for i in range(len(ids)) for _ in range(rng.randrange(1, 5)))
    events = [EventIn(event_id=f"CB{n:06d}", member_id=ids[i], type="purchase", occurred_at=at, amount=_amount(rng),
                      order_id=f"CB{n:06d}", channel="ecommerce") for n, (at, i) in enumerate(purchases)]
    ingest(s, program, events, now=now, actor="demo")
    report.count("cobrand_purchase", len(events))


FARM = [f"F{900001 + i}" for i in range(6)]  # six accounts registered yesterday on one phone
RING = [f"R{900101 + i}" for i in range(3)]  # three accounts inviting each other round in a circle


def _seed_abuse(s: Session, fake, now: dt.datetime, report: DemoReport) -> int:
    """What risk control is for: a small point farm and a referral ring, through the same intake and
    referral codes as everyone else, then the account-graph scan the job runner runs hourly — so the
    console's risk page has a queue, and the tests can check that exactly these accounts are caught."""
    from jifen.engagement import referrals
    from jifen.risk.scan import scan_due

    program = get_program(s, "default")
    for mid in FARM + RING:
        create_member(s, program, mid, name=fake.name(), phone=fake.phone_number(), joined_at=now - dt.timedelta(days=1))
    phone = {"device_id": "dev-farm-0001", "ip": "100.64.7.7"}
    ingest(s, program, [EventIn(event_id=f"check_in-{mid}-farm", member_id=mid, type="check_in", attributes=phone,
                                occurred_at=now - dt.timedelta(minutes=30 - k)) for k, mid in enumerate(FARM)],
           now=now, actor="demo")
    for inviter, invitee in zip(RING, RING[1:] + RING[:1], strict=True):
        code = referrals.invite_code(s, program, get_member(s, program, inviter), now)
        ingest(s, program, referrals.accept(s, program, get_member(s, program, invitee), code, now), now=now,
               actor="demo")
    report.count("scripted_abuse", len(FARM) + len(RING))
    return scan_due(s, program, now)


APPROVAL_ABOVE = 5000
TASKS = [  # (code, name, period, events, measure, target, points, badge, requires)
    ("first_purchase", "首次消费", "once", ["purchase"], "count", 1, 50, "first_order", None),
    ("weekly_check_ins", "每周签到3天", "weekly", ["check_in"], "count", 3, 20, None, None),
    ("big_spender", "累计消费满1000元", "once", ["purchase"], "amount", 1000, 200, "big_spender", "first_purchase"),
]
LUCKY_WHEEL = [  # (name, weight, stock, points, ¥ value)
    ("谢谢参与", 55, None, 0, "0"), ("50积分", 30, None, 50, "0.5"), ("200积分", 12, None, 200, "2"),
    ("电烤箱", 3, 5, 0, "89"),
]
TEAMS = ["周末跑团", "宝妈互助组", "咖啡同好"]


def _seed_engagement(s: Session, rng: random.Random, now: dt.datetime, ids: list[str], locale: str) -> int:
    """The engagement pages' content, made after the replay (tasks then would have cost every event of it a
    look at them): tasks, a lottery with a few draws by members who can pay, three teams of three."""
    from jifen.engagement import tasks, teams
    from jifen.mall import lottery

    program = get_program(s, "default")
    for code, name, period, events, measure, target, points, badge, requires in TASKS:
        tasks.create_task(s, program, {"code": code, "name": hanzi.in_script(name, locale), "period": period,
                                       "events": events, "measure": measure, "target": target, "points": points,
                                       "badge": badge, "requires": requires})
    pool = lottery.create_pool(s, program.id, "lucky_wheel", hanzi.in_script("幸运转盘", locale), 100, Decimal(500), [
        {"name": hanzi.in_script(name, locale), "weight": weight, "stock": stock, "points": points,
         "value": Decimal(value)} for name, weight, stock, points, value in LUCKY_WHEEL])
    sc = ops.Scope(s, program, get_wallet(s, program, None), now, actor="demo")
    drawn = 0
    for mid in rng.sample(ids, min(40, len(ids))):
        member = get_member(s, program, mid)
        if drawn < 20 and ops.available(s, member, sc.wallet) >= pool.cost:
            try:
                lottery.draw(sc, member, pool, Decimal(rng.randrange(10**18)).scaleb(-18))
                drawn += 1
            except JifenError:  # (a member risk control restricted)
                continue
    crew = rng.sample(ids, min(3 * len(TEAMS), len(ids)))
    for n, name in enumerate(TEAMS[:len(crew) // 3]):  # (a demo of a handful of members: fewer teams)
        captain, *mates = [get_member(s, program, mid) for mid in crew[3 * n:3 * n + 3]]
        team = teams.create(s, program, captain, hanzi.in_script(name, locale), 3000, now)
        for mate in mates:
            teams.join(s, team, mate, now)
    return drawn


def demo_present(s: Session) -> bool:
    return bool(s.scalar(select(func.count()).select_from(Member)))
