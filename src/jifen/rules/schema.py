"""The shape of a rule set, as written in YAML or sent to the API, validated before it is saved."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from jifen.rules.audience import Audience
from jifen.rules.expressions import ExpressionError, check_condition
from jifen.strict import Strict

LAYERS: tuple[Layer, ...] = ("base", "campaign", "tier")
Layer = Literal["base", "campaign", "tier"]
Rounding = Literal["down", "half_up", "up"]
CODE = r"^[a-z][a-z0-9_]{0,63}$"
EVENT_TYPE = r"^[a-z][a-z0-9_]{0,31}$"


class Award(Strict):
    """Exactly one of: a fixed number of points, points per ¥1, or a multiplier on the points the
    rules before it gave ("tier" = the member's tier earn multiplier)."""

    fixed: int | None = Field(None, ge=1, le=10**9)
    per_yuan: Decimal | None = Field(None, gt=0, le=10**6)
    multiplier: Decimal | Literal["tier"] | None = None
    rounding: Rounding = "down"

    @model_validator(mode="after")
    def one_kind(self):
        kinds = [k for k in ("fixed", "per_yuan", "multiplier") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of fixed, per_yuan, multiplier")
        if isinstance(self.multiplier, Decimal) and not (Decimal(0) < self.multiplier <= 100):
            raise ValueError("multiplier must be above 0 and at most 100")
        return self

    @property
    def kind(self) -> str:
        return "fixed" if self.fixed is not None else "per_yuan" if self.per_yuan is not None else "multiplier"


class Caps(Strict):
    """Most points one member may get from the rule per calendar period (programme timezone)."""

    day: int | None = Field(None, ge=0)
    week: int | None = Field(None, ge=0)
    month: int | None = Field(None, ge=0)
    lifetime: int | None = Field(None, ge=0)


class Sponsor(Strict):
    """A partner funding part of a rule's points (seed 001: supplier co-funded double-points days)."""

    name: str = Field(min_length=1, max_length=100)
    share: Decimal = Field(gt=0, le=1)


class Rule(Strict):
    code: str = Field(pattern=CODE)
    name: str = ""
    layer: Layer = "base"
    events: list[str] = Field(min_length=1)
    condition: str = "true"
    award: Award
    wallet: str | None = None  # the programme's default wallet when not given
    channels: list[str] = []  # empty: every channel
    categories: list[str] = []  # per-¥ and multiplier awards count only these order lines
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    priority: int = 0  # order inside the layer (lower first), then the order written
    caps: Caps | None = None
    budget: str | None = None  # a named programme-wide budget shared by every rule naming it
    sponsor: Sponsor | None = None
    audience: Audience | None = None  # only members it reaches (a campaign's target, rollout and holdout)
    enabled: bool = True

    @field_validator("events")
    @classmethod
    def event_types(cls, v: list[str]) -> list[str]:
        for t in v:
            if not re.match(EVENT_TYPE, t):
                raise ValueError(f"bad event type {t!r}")
        return v

    @field_validator("condition")
    @classmethod
    def valid_condition(cls, v: str, info: ValidationInfo) -> str:
        if info.context and info.context.get("stored"):
            return v  # checked when saved; a stored rule the bounds now refuse is skipped where it runs
        try:
            check_condition(v)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("starts_at", "ends_at")
    @classmethod
    def aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give a timezone (e.g. 2026-11-11T00:00:00+08:00)")
        return v

    @model_validator(mode="after")
    def window(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.award.multiplier == "tier" and self.layer != "tier":
            raise ValueError("a tier multiplier belongs in the tier layer")
        return self


class TierLevel(Strict):
    code: str = Field(pattern=CODE)
    name: str
    threshold: Decimal = Field(ge=0)  # to reach the tier
    retain: Decimal | None = Field(None, ge=0)  # to keep it at evaluation (保級); the threshold when absent
    earn_multiplier: Decimal = Field(Decimal(1), gt=0, le=100)
    benefits: list[str] = []

    @property
    def keep_at(self) -> Decimal:
        return self.threshold if self.retain is None else self.retain


class ScoreWeight(Strict):
    weight: Decimal = Field(ge=0, le=1)
    target: Decimal = Field(gt=0)  # the value that earns the full weight


class ThresholdDiscount(Strict):
    """A promotion lowering every threshold (e.g. 0.8 = 20% off) for upgrades inside its window."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    factor: Decimal = Field(gt=0, le=1)


class TierConfig(Strict):
    basis: Literal["spend", "points", "score"] = "spend"
    window_days: int = Field(365, ge=1, le=3660)
    evaluation: Literal["monthly", "quarterly", "half_yearly", "yearly"] = "quarterly"
    grace_days: int = Field(30, ge=0, le=3660)
    # Composite score 0-100 (seed 004: spend 40%, frequency 30%, repurchase 20%, tenure 10%).
    score: dict[Literal["spend", "frequency", "repurchase", "tenure"], ScoreWeight] = {}
    discounts: list[ThresholdDiscount] = []
    levels: list[TierLevel] = Field(min_length=1)

    @model_validator(mode="after")
    def ladder(self):
        if self.levels[0].threshold != 0:
            raise ValueError("the first tier is the entry tier: its threshold must be 0")
        thresholds = [lv.threshold for lv in self.levels]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            raise ValueError("tier thresholds must rise strictly from the first tier to the last")
        codes = [lv.code for lv in self.levels]
        if len(set(codes)) != len(codes):
            raise ValueError("tier codes must be unique")
        for lv in self.levels:
            if lv.retain is not None and lv.retain > lv.threshold:
                raise ValueError(f"tier {lv.code!r}: retain must not exceed threshold")
        if self.basis == "score":
            if not self.score:
                raise ValueError("basis score needs score weights")
            if sum(w.weight for w in self.score.values()) != 1:
                raise ValueError("score weights must add up to 1")
        return self

    def level(self, code: str | None) -> TierLevel | None:
        return next((lv for lv in self.levels if lv.code == code), None)

    def rank(self, code: str | None) -> int:
        return next((i for i, lv in enumerate(self.levels) if lv.code == code), 0)


class RuleSetDoc(Strict):
    """Stacking is explicit: layers run in `layer_order`, rules inside a layer by priority, then in the
    order they are written.
    Fixed and per-¥ awards add up; a multiplier rule adds (m - 1) × a basis, where the basis is the
    running total so far (`multipliers: multiply`, so 1.1 then 1.3 gives ×1.43) or only the fixed and
    per-¥ points so far (`multipliers: add`, so 1.1 and 1.3 give ×1.4)."""

    multipliers: Literal["multiply", "add"] = "multiply"
    layer_order: list[Layer] = list(LAYERS)
    budgets: dict[str, int] = {}
    rules: list[Rule] = []
    # The tier ladder travels with the rules: a multiplier prices an event as a rule does, so it changes the
    # same way (a version, an effective date, the notice and announcement, a simulation first) and an event
    # is priced with the ladder in force when it occurred. None: unchanged (publishing carries the ladder in
    # force forward; versions from before tiers were versioned carry none: rules.service.ladder).
    tiers: TierConfig | None = None

    @model_validator(mode="after")
    def consistent(self):
        if sorted(self.layer_order) != sorted(LAYERS):
            raise ValueError(f"layer_order must list each of {', '.join(LAYERS)} once")
        codes = [r.code for r in self.rules]
        dup = {c for c in codes if codes.count(c) > 1}
        if dup:
            raise ValueError(f"rule codes must be unique: {', '.join(sorted(dup))}")
        for r in self.rules:
            if r.budget is not None and r.budget not in self.budgets:
                raise ValueError(f"rule {r.code!r} names budget {r.budget!r}, which is not in budgets")
        for name, amount in self.budgets.items():
            if amount < 0:
                raise ValueError(f"budget {name!r} must not be negative")
        return self

    def ordered(self) -> list[Rule]:
        rank = {layer: i for i, layer in enumerate(self.layer_order)}
        live = [(i, r) for i, r in enumerate(self.rules) if r.enabled]
        return [r for _, r in sorted(live, key=lambda ir: (rank[ir[1].layer], ir[1].priority, ir[0]))]
