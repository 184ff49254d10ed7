"""Rule evaluation, free of the database: which rules an event fires, then how many points each gives.

Two passes, so that a batch can be evaluated as a set: `fire` checks every condition of every event
(no side effects), then `price` turns the fired rules into points in stacking order, drawing on caps
and budgets through a UsageBook that the caller has loaded (and locked) for the whole batch.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import cast
from zoneinfo import ZoneInfo

import cel

from jifen.rules.expressions import ConditionError, ExpressionError, compile_condition, evaluate
from jifen.rules.native import native
from jifen.rules.schema import Rule, RuleSetDoc

log = logging.getLogger("jifen.rules")
_ROUNDING = {"down": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "up": ROUND_CEILING}


def round_points(value: Decimal, mode: str) -> int:
    return int(value.quantize(Decimal(1), rounding=_ROUNDING[mode]))


@dataclass
class EventFacts:
    type: str
    occurred_at: dt.datetime
    amount: Decimal | None = None
    channel: str | None = None
    order_id: str | None = None
    lines: list[dict] = field(default_factory=list)  # {sku, category, amount, quantity}
    attributes: dict = field(default_factory=dict)


@dataclass
class MemberFacts:
    pk: int
    member_id: str
    tier: str | None
    tier_multiplier: Decimal
    joined_at: dt.datetime
    birthday: dt.date | None = None
    attributes: dict = field(default_factory=dict)
    credit: int = 100  # credit score; below 80 it scales every award down (earn_weight)

    @property
    def earn_weight(self) -> Decimal:
        return Decimal(1) if self.credit >= 80 else Decimal(max(0, self.credit)) / 100


@dataclass
class Counters:
    """The lazy counter functions an expression may call, bound to one event."""

    count: Callable[[str, str], int]
    amount: Callable[[str, str], float]
    streak: Callable[[str], int]
    days_since: Callable[[str], int]
    team_size: Callable[[], int] = lambda: 0  # members of the member's team, the member included

    failure: BaseException | None = None  # what a counter raised (the database): not the condition's fault

    def functions(self) -> dict:
        return {name: self._watched(fn) for name, fn in (("count", self.count), ("amount", self.amount),
                ("streak", self.streak), ("days_since", self.days_since), ("team_size", self.team_size))}

    def _watched(self, fn: Callable) -> Callable:
        """CEL turns a function's exception into its own error; keep the original to raise it again."""
        def call(*args):
            try:
                return fn(*args)
            except BaseException as exc:
                self.failure = exc
                raise
        return call

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


@dataclass
class AwardLine:
    rule: str
    layer: str
    wallet: str | None
    points: int
    wanted: int  # before caps and budgets
    sponsor: str | None = None
    sponsored: int = 0  # the sponsor's part of the points, for settlement

    def as_dict(self) -> dict:
        return {"rule": self.rule, "layer": self.layer, "wallet": self.wallet, "points": self.points,
                **({"capped_from": self.wanted} if self.wanted != self.points else {}),
                **({"sponsor": self.sponsor, "sponsored": self.sponsored} if self.sponsor else {})}


def period_keys(moment: dt.datetime, tz: ZoneInfo) -> dict[str, str]:
    local = moment.astimezone(tz)
    year, week, _ = local.isocalendar()
    return {"day": f"d:{local:%Y-%m-%d}", "week": f"w:{year}-W{week:02d}", "month": f"m:{local:%Y-%m}",
            "lifetime": "all"}


def event_variables(ev: EventFacts, member: MemberFacts, tz: ZoneInfo) -> dict:
    local = ev.occurred_at.astimezone(tz)
    lines = [{"sku": str(li.get("sku") or ""), "category": str(li.get("category") or ""),
              "amount": float(li.get("amount") or 0), "quantity": int(li.get("quantity") or 1)} for li in ev.lines]
    birthday = member.birthday
    return {
        "event": {
            "type": ev.type, "channel": ev.channel or "", "amount": float(ev.amount or 0),
            "order_id": ev.order_id or "", "occurred_at": ev.occurred_at, "lines": lines,
            "categories": sorted({li["category"] for li in lines if li["category"]}),
            "attributes": ev.attributes,
            "local": {"date": f"{local:%Y-%m-%d}", "hour": local.hour, "weekday": local.isoweekday(),
                      "day": local.day, "month": local.month, "year": local.year},
        },
        "member": {
            "id": member.member_id, "tier": member.tier or "", "attributes": member.attributes,
            "segments": list(member.attributes.get("segments") or []), "credit": member.credit,
            "joined_days": max(0, (local.date() - member.joined_at.astimezone(tz).date()).days),
            "birthday_month": bool(birthday and birthday.month == local.month),
            "birthday_today": bool(birthday and (birthday.month, birthday.day) == (local.month, local.day)),
        },
        "tier": member.tier or "",
    }


def applies(rule: Rule, ev: EventFacts) -> bool:
    """The cheap filters before the condition: event type, channel, schedule window."""
    if ev.type not in rule.events:
        return False
    if rule.channels and (ev.channel or "") not in rule.channels:
        return False
    if rule.starts_at and ev.occurred_at < rule.starts_at:
        return False
    return not (rule.ends_at and ev.occurred_at >= rule.ends_at)


def reaches(rule: Rule, member: MemberFacts) -> bool:
    """A rule with an audience gives only to the members its rollout has reached (not its holdout)."""
    return rule.audience is None or rule.audience.group(member.member_id, member.tier, member.attributes) == "treated"


def holds(condition: str, context: cel.Context, counters: Counters) -> bool:
    """Whether a stored condition holds. One that fails (ExpressionError: beyond today's bounds;
    ConditionError: division by zero, overflow…) raises for the caller to skip and report; a counter's own
    failure (the database) is raised as it is."""
    if condition.strip() == "true":
        return True
    try:
        return evaluate(compile_condition(condition), context)
    finally:
        counters.raise_failure()


def fire(doc: RuleSetDoc, ev: EventFacts, member: MemberFacts, counters: Counters, tz: ZoneInfo,
         failed: list[dict] | None = None) -> list[Rule]:
    """The rules whose filters and condition hold, in stacking order. A rule whose condition fails is
    skipped (the member's event goes on under the other rules) and listed in `failed`."""
    candidates = [r for r in _ordered(doc) if applies(r, ev) and reaches(r, member)]
    if not candidates:
        return []
    variables: dict | None = None
    context: cel.Context | None = None  # built only for a condition outside rules/native's subset (~100 µs)
    fired = []
    for rule in candidates:
        if rule.condition.strip() == "true":
            fired.append(rule)
            continue
        quick = native(rule.condition)
        if quick is not None:
            variables = variables or event_variables(ev, member, tz)
            if quick(variables):
                fired.append(rule)
            continue
        variables = variables or event_variables(ev, member, tz)
        context = context or cel.Context(variables=variables, functions=counters.functions())
        try:
            if holds(rule.condition, context, counters):
                fired.append(rule)
        except (ExpressionError, ConditionError) as exc:
            report_failure(rule.code, str(exc))
            if failed is not None:
                failed.append({"rule": rule.code, "error": str(exc)})
    return fired


# {id(doc): (doc, its rule count then, doc.ordered())}: a stored version's parsed document is shared (rules.service
# .doc_of) and sorting it again for every event was 2 % of a bulk import. The document is kept so that its id is
# not reused; a document given more rules since is sorted afresh.
_ORDER: dict[int, tuple[RuleSetDoc, int, list[Rule]]] = {}


def _ordered(doc: RuleSetDoc) -> list[Rule]:
    hit = _ORDER.get(id(doc))
    if hit is None or hit[0] is not doc or hit[1] != len(doc.rules):
        if len(_ORDER) >= 256:
            _ORDER.clear()
        hit = _ORDER[id(doc)] = (doc, len(doc.rules), doc.ordered())
    return hit[2]


@functools.lru_cache(maxsize=1024)
def report_failure(rule: str, error: str) -> None:
    """Log a failing rule once per process and error (every purchase would repeat it)."""
    log.warning("rule %s skipped: its condition failed: %s", rule, error)


class UsageBook:
    """Points already used under caps and budgets, read through `load(keys)` once per key and
    written back by the caller from `changed`."""

    def __init__(self, load: Callable[[list[tuple[str, int, str]]], dict[tuple[str, int, str], int]]):
        self._load = load
        self.used: dict[tuple[str, int, str], int] = {}
        self.changed: set[tuple[str, int, str]] = set()

    def preload(self, keys) -> None:
        missing = sorted({k for k in keys if k not in self.used})
        if missing:
            found = self._load(missing)
            for k in missing:
                self.used[k] = found.get(k, 0)

    def release(self, keys, points: int) -> None:
        """Give points back (a refund took them back): never below zero."""
        self.preload(keys)
        for k in keys:
            self.used[k] = max(0, self.used[k] - points)
            self.changed.add(k)

    def grant(self, limits: list[tuple[tuple[str, int, str], int]], wanted: int) -> int:
        self.preload(k for k, _ in limits)
        granted = min([wanted] + [max(0, limit - self.used[k]) for k, limit in limits])
        if granted:
            for k, _ in limits:
                self.used[k] += granted
                self.changed.add(k)
        return granted


def limits_for(doc: RuleSetDoc, rule: Rule, member_pk: int, periods: dict[str, str]):
    """(usage key, limit) pairs that bound one rule's award to one member."""
    out = []
    if rule.caps:
        for period, limit in rule.caps.model_dump().items():
            if limit is not None:
                out.append(((f"rule:{rule.code}", member_pk, periods[period]), limit))
    if rule.budget is not None:
        out.append(((f"budget:{rule.budget}", 0, "all"), doc.budgets[rule.budget]))
    return out


def basis_amount(rule: Rule, ev: EventFacts) -> tuple[Decimal, Decimal]:
    """(amount this rule counts, share of the order it is): all of it unless the rule names categories."""
    whole = ev.amount if ev.amount is not None else sum((Decimal(str(li.get("amount") or 0)) for li in ev.lines),
                                                         Decimal(0))
    if not rule.categories:
        return whole, Decimal(1)
    part = sum((Decimal(str(li.get("amount") or 0)) for li in ev.lines if li.get("category") in rule.categories),
               Decimal(0))
    return part, (part / whole if whole > 0 else Decimal(0))


def price(doc: RuleSetDoc, fired: list[Rule], ev: EventFacts, member: MemberFacts, tz: ZoneInfo,
          usage: UsageBook) -> list[AwardLine]:
    """Points per fired rule, in stacking order (see RuleSetDoc), after caps and budgets."""
    periods = period_keys(ev.occurred_at, tz)
    running = 0  # every point so far
    additive = 0  # fixed and per-¥ points so far
    lines = []
    for rule in fired:
        a = rule.award
        amount, share = basis_amount(rule, ev)
        if a.kind == "fixed":
            wanted = cast(int, a.fixed)  # (Award allows exactly the field of its kind)
        elif a.kind == "per_yuan":
            wanted = round_points(amount * cast(Decimal, a.per_yuan), a.rounding)
        else:
            factor = member.tier_multiplier if a.multiplier == "tier" else cast(Decimal, a.multiplier)
            basis = running if doc.multipliers == "multiply" else additive
            wanted = round_points(Decimal(basis) * share * (factor - 1), a.rounding)
        wanted = max(0, wanted)
        if member.earn_weight < 1:  # a member with a low credit score earns less (rounded down)
            wanted = round_points(Decimal(wanted) * member.earn_weight, "down")
        limits = limits_for(doc, rule, member.pk, periods)
        points = usage.grant(limits, wanted) if limits and wanted else wanted
        running += points
        if a.kind != "multiplier":
            additive += points
        if wanted:  # a rule that fired but had nothing to give (a ×1 tier, a zero basis) is left out
            sponsor = rule.sponsor
            lines.append(AwardLine(rule.code, rule.layer, rule.wallet, points, wanted, cast(str | None, sponsor and sponsor.name),
                                   round_points(points * sponsor.share, "half_up") if sponsor else 0))
    return lines


def usage_keys(doc: RuleSetDoc, fired: list[Rule], member_pk: int, occurred_at: dt.datetime, tz: ZoneInfo):
    periods = period_keys(occurred_at, tz)
    return [k for r in fired for k, _ in limits_for(doc, r, member_pk, periods)]

