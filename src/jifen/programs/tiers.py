"""Tiers: the qualifying measure, real-time upgrades, the periodic evaluation that may downgrade.

Upgrades happen the moment a member qualifies (after each event). Downgrades happen only in
`evaluate`: a member below their tier's retention threshold first gets `grace_days`; one still below
at an evaluation after the grace ends moves down to the highest tier whose retention they meet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session, object_session

from jifen.db import among, utcnow
from jifen.events.models import Event
from jifen.ledger.engine import lock_members
from jifen.members.models import Member
from jifen.outbox import emit, emit_many
from jifen.programs.models import Program
from jifen.rows import update_rows
from jifen.rules.schema import TierConfig, TierLevel
from jifen.rules.service import ladder, ladder_at


def tier_config(program: Program, at: dt.datetime | None = None) -> TierConfig | None:
    """The ladder in force at `at` (now when None): the tier ladder is versioned with the rules."""
    session = object_session(program)
    if session is None:
        return ladder(program, None)
    return ladder_at(session, program, at or utcnow())


def current_level(cfg: TierConfig, member: Member | Standing) -> TierLevel:
    return cfg.level(member.tier) or cfg.levels[0]


_NET = func.coalesce(Event.amount, 0) - Event.refunded_amount
_PURCHASE = Event.type == "purchase"
_IN_TIME = (Event.occurred_at > bindparam("since"), Event.occurred_at <= bindparam("now"))
_IN_WINDOW = (Event.program_id == bindparam("program"), *_IN_TIME)
# Named members (each belongs to one programme): found by the member index. With the programme's
# condition as well, SQLite chose the programme-and-time index and read the whole year of every member's
# events for each purchase — 7 ms per event at 14,000 events, growing with the programme.
_OF_MEMBERS = among(Event.member_pk, "members")
# Per member over the window: net spend, purchases not fully refunded, net points.
_COLUMNS = (
    Event.member_pk,
    func.coalesce(func.sum(case((_PURCHASE, _NET), else_=0)), 0),
    func.coalesce(func.sum(case((_PURCHASE & (_NET > 0), 1), else_=0)), 0),
    func.coalesce(func.sum(Event.points - Event.points_reversed), 0),
)
_FACTS = select(*_COLUMNS).where(*_IN_WINDOW).group_by(Event.member_pk)
_FACTS_OF = select(*_COLUMNS).where(_OF_MEMBERS, *_IN_TIME).group_by(Event.member_pk)
_MONTHS = select(Event.member_pk, Event.occurred_at).where(*_IN_WINDOW, _PURCHASE, _NET > 0)
_MONTHS_OF = select(Event.member_pk, Event.occurred_at).where(_OF_MEMBERS, *_IN_TIME, _PURCHASE, _NET > 0)


def measures(session: Session, program: Program, cfg: TierConfig, now: dt.datetime,
             member_pks: list[int] | None = None) -> dict[int, Decimal]:
    """The qualifying measure of each member (all who have events in the window when member_pks is None)."""
    params = {"program": program.id, "since": now - dt.timedelta(days=cfg.window_days), "now": now,
              "members": member_pks}
    chosen = member_pks is not None
    facts = {pk: (Decimal(spend), int(count), int(points))
             for pk, spend, count, points in session.execute(_FACTS_OF if chosen else _FACTS, params)}
    if cfg.basis == "spend":
        return {pk: f[0] for pk, f in facts.items()}
    if cfg.basis == "points":
        return {pk: Decimal(f[2]) for pk, f in facts.items()}
    tz = ZoneInfo(program.timezone)
    months: dict[int, set] = defaultdict(set)
    for pk, at in session.execute(_MONTHS_OF if chosen else _MONTHS, params):
        local = at.astimezone(tz)
        months[pk].add((local.year, local.month))
    joined = dict(session.execute(select(Member.id, Member.joined_at).where(
        Member.program_id == program.id, *([Member.id.in_(member_pks)] if member_pks is not None else []))).all())
    out = {}
    for pk in set(facts) | (set(member_pks) if member_pks is not None else set()):
        spend, count, _ = facts.get(pk, (Decimal(0), 0, 0))
        values = {"spend": spend, "frequency": Decimal(count), "repurchase": Decimal(len(months[pk])),
                  "tenure": Decimal(max(0, (now - joined[pk]).days)) if pk in joined else Decimal(0)}
        out[pk] = score(cfg, values)
    return out


def score(cfg: TierConfig, values: dict[str, Decimal]) -> Decimal:
    """0-100: each part earns its weight in full at its target, proportionally below it."""
    total = sum((w.weight * min(Decimal(1), values[name] / w.target) for name, w in cfg.score.items()), Decimal(0))
    return (total * 100).quantize(Decimal("0.01"))


def thresholds_factor(cfg: TierConfig, now: dt.datetime) -> Decimal:
    return min((d.factor for d in cfg.discounts if d.starts_at <= now < d.ends_at), default=Decimal(1))


def qualified_rank(cfg: TierConfig, value: Decimal, now: dt.datetime) -> int:
    factor = thresholds_factor(cfg, now)
    return max(i for i, lv in enumerate(cfg.levels) if value >= lv.threshold * factor)


def moves_measure(cfg: TierConfig | None, event_type: str, points: int) -> bool:
    """Whether an event can raise the qualifying measure (so an upgrade check is worth a query)."""
    return cfg is not None and (points > 0 if cfg.basis == "points" else event_type == "purchase")


def upgrade(session: Session, program: Program, members: list[Member], now: dt.datetime,
            values: dict[int, Decimal] | None = None, cfg: TierConfig | None = None) -> dict[int, str]:
    """Real time: raise members who now qualify for a higher tier of the ladder in force now (`cfg` when the
    caller has it); clear grace of those back above it. The caller holds the members' locks; `values` are
    their measures when the caller already knows them."""
    cfg = cfg or tier_config(program, now)
    if cfg is None or not members:
        return {}
    for m in members:
        if m.tier is None:  # a new member enters the ladder at its first tier
            m.tier, m.tier_since = cfg.levels[0].code, now
    if values is None:
        values = measures(session, program, cfg, now, [m.id for m in members])
    raised = {}
    for m in members:
        value = values.get(m.id, Decimal(0))
        rank = cfg.rank(m.tier)
        if qualified_rank(cfg, value, now) > rank:
            _change(session, program, cfg, m, cfg.levels[qualified_rank(cfg, value, now)], now)
            raised[m.id] = cast(str, m.tier)  # (_change just set it)
        elif m.tier_grace_until is not None and value >= current_level(cfg, m).keep_at:
            m.tier_grace_until = None
    return raised


@dataclass
class Standing:
    """A member's tier columns, as the periodic evaluation reads and writes them: no ORM object per member."""

    id: int
    tier: str | None
    tier_since: dt.datetime | None
    tier_grace_until: dt.datetime | None


_STANDINGS = (select(Member.id, Member.tier, Member.tier_since, Member.tier_grace_until)
              .where(among(Member.id, "members")).order_by(Member.id))


def evaluate(session: Session, program: Program, now: dt.datetime, batch: int = 10_000) -> dict[str, int]:
    """The periodic evaluation: upgrades, grace for those below retention, downgrades after grace.
    A batch of members at a time, their changes written with one statement and their messages with another."""
    cfg = tier_config(program, now)
    summary = {"members": 0, "upgraded": 0, "kept": 0, "grace_started": 0, "in_grace": 0, "downgraded": 0}
    if cfg is None:
        return summary
    program.tiers_evaluated_at = now
    after = 0
    while True:
        pks = list(session.scalars(select(Member.id).where(Member.program_id == program.id, Member.id > after)
                                   .order_by(Member.id).limit(batch)))  # (autoflush: pending ORM changes first)
        if not pks:
            return summary
        after = pks[-1]
        lock_members(session, pks)
        values = measures(session, program, cfg, now, pks)
        changed: list[dict[str, Any]] = []
        messages = []
        for row in session.execute(_STANDINGS, {"members": pks}):
            m = Standing(*row)
            summary["members"] += 1
            before = (m.tier, m.tier_since, m.tier_grace_until)
            summary[_evaluate_one(cfg, m, values.get(m.id, Decimal(0)), now)] += 1
            if (m.tier, m.tier_since, m.tier_grace_until) != before:
                changed.append({"id": m.id, "tier": m.tier, "tier_since": m.tier_since,
                                "tier_grace_until": m.tier_grace_until})
            if before[0] is not None and m.tier != before[0]:
                messages.append(_tier_message(program, cfg, m, before[0]))
        update_rows(session, Member, changed)
        emit_many(session, messages)
        _expire_loaded(session, {m["id"] for m in changed})


def _expire_loaded(session: Session, pks: set[int]) -> None:
    """Members the session already holds as objects were written behind its back: read them again when used."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Member) and obj.id in pks:
            session.expire(obj, ["tier", "tier_since", "tier_grace_until"])


def _change(session: Session, program: Program, cfg: TierConfig, m: Member, level: TierLevel,
            now: dt.datetime) -> None:
    before = m.tier
    m.tier, m.tier_since, m.tier_grace_until = level.code, now, None
    if before is not None:
        emit(session, *_tier_message(program, cfg, m, before))


def _tier_message(program: Program, cfg: TierConfig, m: Member | Standing,
                  before: str) -> tuple[int, str, dict, int]:
    """A tier.changed message for the outbox, with the change (the member learns of it; webhooks too)."""
    old, new = cfg.level(before) or cfg.levels[0], cfg.level(m.tier) or cfg.levels[0]
    return (program.id, "tier.changed", {"old": old.name, "new": new.name, "old_code": old.code,
                                         "new_code": new.code, "member_pk": m.id}, m.id)


def _evaluate_one(cfg: TierConfig, m: Member | Standing, value: Decimal, now: dt.datetime) -> str:
    """The evaluation's decision for one member, applied to its tier columns; which outcome it was."""
    if m.tier is None:
        m.tier, m.tier_since = cfg.levels[0].code, now
    rank, qualified = cfg.rank(m.tier), qualified_rank(cfg, value, now)
    if qualified > rank:
        m.tier, m.tier_since, m.tier_grace_until = cfg.levels[qualified].code, now, None
        return "upgraded"
    if value >= current_level(cfg, m).keep_at:
        m.tier_grace_until = None
        return "kept"
    if m.tier_grace_until is None and cfg.grace_days > 0:
        m.tier_grace_until = now + dt.timedelta(days=cfg.grace_days)
        return "grace_started"
    if m.tier_grace_until is not None and now < m.tier_grace_until:
        return "in_grace"
    keep = max(i for i, lv in enumerate(cfg.levels[: rank + 1]) if value >= lv.keep_at)
    m.tier, m.tier_since, m.tier_grace_until = cfg.levels[keep].code, now, None
    return "downgraded"


def progress(session: Session, program: Program, member: Member, now: dt.datetime) -> dict | None:
    """Tier, its benefits and the way to the next one, for member-facing pages and the API."""
    cfg = tier_config(program, now)
    if cfg is None:
        return None
    value = measures(session, program, cfg, now, [member.id]).get(member.id, Decimal(0))
    level, rank = current_level(cfg, member), cfg.rank(member.tier)
    nxt = cfg.levels[rank + 1] if rank + 1 < len(cfg.levels) else None
    factor = thresholds_factor(cfg, now)
    since, grace = member.tier_since, member.tier_grace_until
    return {  # JSON-ready, like every view: it is sent as it is (JSONResponse) and exported
        "code": level.code, "name": level.name, "since": since.isoformat() if since else None,
        "grace_until": grace.isoformat() if grace else None,
        "earn_multiplier": str(level.earn_multiplier), "benefits": level.benefits,
        "basis": cfg.basis, "window_days": cfg.window_days, "measure": str(value), "retain": str(level.keep_at),
        "next": None if nxt is None else {
            "code": nxt.code, "name": nxt.name, "threshold": str(nxt.threshold * factor),
            "remaining": str(max(Decimal(0), nxt.threshold * factor - value))},
    }


PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}


def period_start(cfg: TierConfig, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Start of the evaluation period containing `now` (1 January, 1 April … in the programme's timezone)."""
    local = now.astimezone(tz)
    months = PERIOD_MONTHS[cfg.evaluation]
    first = local.replace(month=(local.month - 1) // months * months + 1, day=1, hour=0, minute=0, second=0,
                          microsecond=0)
    return first.replace(tzinfo=None).replace(tzinfo=tz).astimezone(dt.UTC)


def evaluate_if_due(session: Session, program: Program, now: dt.datetime) -> dict[str, int] | None:
    """Run the evaluation once per period (quarterly, …): when none has run since the period began."""
    cfg = tier_config(program, now)
    if cfg is None:
        return None
    if program.tiers_evaluated_at is not None and program.tiers_evaluated_at >= period_start(
            cfg, now, ZoneInfo(program.timezone)):
        return None
    return evaluate(session, program, now)
