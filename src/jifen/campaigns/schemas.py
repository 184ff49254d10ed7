"""The shapes of campaigns, experiments and bandits as sent to the API and the CLI, validated before use."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from jifen.programs.config import DoubleValue
from jifen.rules.schema import CODE, EVENT_TYPE, Award, Sponsor
from jifen.strict import Strict

KEY = r"^[a-z][a-z0-9_]{0,47}$"  # campaign codes, experiment and bandit keys ("campaign_" + code is a rule code)
Metric = Literal["conversion", "spend", "redemption"]


class Target(Strict):
    """Who a campaign or experiment is for: each list given must match (any of its entries); none = everyone.
    `lists` name uploaded member lists (kept among the members' segments)."""

    tiers: list[str] = Field(default=[], max_length=50)
    segments: list[str] = Field(default=[], max_length=50)
    tags: list[str] = Field(default=[], max_length=50)
    lists: list[str] = Field(default=[], max_length=10)


class RedemptionDays(DoubleValue):
    """Double-value redemption days: on these local days of the campaign's window (every day of it when
    neither list is given) each point is worth `factor` times as much in the points mall — a reward priced
    P points costs ⌈P ÷ factor⌉ — for the members the campaign reaches. The fields and their checks are the
    programme's own double-value days'; only "no days listed" differs (the whole window, not never)."""


class Effect(Strict):
    """What the campaign gives on its events: a multiplier on the points the other rules gave (2 = double
    points), a fixed bonus per event, or extra points per ¥1; only the named categories' order lines when
    given. Or, in place of points, double-value redemption days in the points mall (`double_value`)."""

    events: list[str] = Field(default=["purchase"], min_length=1, max_length=20)
    multiplier: Decimal | None = Field(None, gt=1, le=10)
    bonus: int | None = Field(None, ge=1, le=10**6)
    per_yuan: Decimal | None = Field(None, gt=0, le=100)
    double_value: RedemptionDays | None = None
    categories: list[str] = Field(default=[], max_length=50)
    channels: list[str] = Field(default=[], max_length=20)

    @model_validator(mode="after")
    def one_kind(self):
        if sum(v is not None for v in (self.multiplier, self.bonus, self.per_yuan, self.double_value)) != 1:
            raise ValueError("give exactly one of multiplier, bonus, per_yuan, double_value")
        if self.double_value is not None and {"events", "categories", "channels"} & self.model_fields_set:
            raise ValueError("double_value prices the points mall: events, categories and channels are for "
                             "earning effects")
        for t in self.events:
            if not re.match(EVENT_TYPE, t):
                raise ValueError(f"bad event type {t!r}")
        return self

    @property
    def earns(self) -> bool:
        """Whether the effect gives points on events (a campaign-layer rule), not a price in the mall."""
        return self.double_value is None

    def award(self) -> Award:
        return Award(multiplier=self.multiplier, fixed=self.bonus, per_yuan=self.per_yuan)


class CampaignIn(Strict):
    code: str = Field(pattern=KEY)
    name: str = Field(min_length=1, max_length=200)
    target: Target = Target()
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    effect: Effect
    budget: int = Field(ge=1, le=10**12)
    sponsor: Sponsor | None = None
    rollout: Decimal = Field(Decimal(1), ge=0, le=1)  # 灰度: share of the target reached
    holdout: Decimal = Field(Decimal(0), ge=0, le=Decimal("0.5"))

    @model_validator(mode="after")
    def window(self):
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.rollout == 0 and self.holdout == 0:
            raise ValueError("rollout and holdout are both 0: nobody would be in the campaign")
        return self


class CampaignChange(Strict):
    """What may change on a campaign: the rollout share (灰度 step), the budget, the end."""

    rollout: Decimal | None = Field(None, ge=0, le=1)
    budget: int | None = Field(None, ge=1, le=10**12)
    ends_at: AwareDatetime | None = None


class MemberList(Strict):
    """An uploaded list of member ids: stored as the campaign's list, in place of any earlier upload."""

    member_ids: list[str] = Field(min_length=1, max_length=100_000)


class ArmIn(Strict):
    name: str = Field(pattern=CODE)
    weight: Decimal = Field(Decimal(1), gt=0, le=1000)


class ExperimentIn(Strict):
    key: str = Field(pattern=KEY)
    name: str = Field(min_length=1, max_length=200)
    arms: list[ArmIn] = Field(min_length=2, max_length=10)
    target: Target = Target()
    holdout: Decimal = Field(Decimal(0), ge=0, le=Decimal("0.5"))
    metric: Metric = "conversion"
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def valid(self):
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        if "holdout" in names:
            raise ValueError("'holdout' is the name of the holdout group, not of an arm")
        return self


class PlanIn(Strict):
    """Sample size for a lift, or the minimum detectable effect of a size (give lift or members_per_arm)."""

    metric: Literal["conversion", "spend"] = "conversion"
    baseline: float = Field(gt=0, lt=1e9)  # the control's conversion rate, or its mean spend
    sd: float | None = Field(None, gt=0, lt=1e9)  # spend's standard deviation (metric spend)
    lift: float | None = Field(None, gt=-1e9, lt=1e9)
    members_per_arm: int | None = Field(None, ge=2, le=10**9)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.8, ge=0.5, lt=1)

    @model_validator(mode="after")
    def one_question(self):
        if (self.lift is None) == (self.members_per_arm is None):
            raise ValueError("give either lift or members_per_arm")
        if self.metric == "conversion" and self.baseline >= 1:
            raise ValueError("a conversion baseline is a rate below 1")
        if self.metric == "spend" and self.sd is None:
            raise ValueError("spend needs sd, the standard deviation of spend per member")
        return self


class BanditIn(Strict):
    key: str = Field(pattern=KEY)
    arms: list[str] = Field(min_length=2, max_length=20)

    @model_validator(mode="after")
    def unique(self):
        if len(set(self.arms)) != len(self.arms) or any(not 0 < len(a) <= 64 for a in self.arms):
            raise ValueError("arm names must be unique, 1 to 64 characters")
        return self


class RewardIn(Strict):
    arm: str = Field(min_length=1, max_length=64)
    converted: bool


class SimulateIn(Strict):
    rates: list[float] = Field(min_length=2, max_length=20)
    rounds: int = Field(2000, ge=1, le=5_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def rates_are_probabilities(self):
        if any(not 0 <= r <= 1 for r in self.rates):
            raise ValueError("rates are probabilities between 0 and 1")
        return self


# Answers (documented in the OpenAPI document; nested figures stay open dictionaries).
class CampaignView(BaseModel):
    code: str
    name: str
    status: str
    rule: str
    target: dict[str, Any]
    rollout: str
    holdout: str
    starts_at: str
    ends_at: str
    effect: dict[str, Any]
    budget: int
    sponsor: dict[str, Any] | None


class CampaignReport(BaseModel):
    campaign: CampaignView
    period: dict[str, str]
    cost: dict[str, Any]
    budget: dict[str, int]
    participants: int
    groups: dict[str, int]
    incremental: dict[str, Any]
    roi: dict[str, Any]


class ExperimentView(BaseModel):
    key: str
    name: str
    arms: list[dict[str, Any]]
    target: dict[str, Any]
    holdout: str
    metric: str
    starts_at: str
    ends_at: str


class ExperimentResults(BaseModel):
    experiment: ExperimentView
    groups: dict[str, int]
    metrics: dict[str, Any]
    comparisons: list[dict[str, Any]]


class Assignment(BaseModel):
    experiment: str
    member_id: str
    arm: str | None


class Plan(BaseModel):
    metric: str
    members_per_arm: int
    lift: float
    alpha: float
    power: float


class BanditView(BaseModel):
    key: str
    arms: list[dict[str, Any]]
    pulls: int
    estimated_regret: float
    best: str


class Choice(BaseModel):
    bandit: str
    arm: str


class Simulation(BaseModel):
    rounds: int
    pulls: list[int]
    best_arm: int
    best_share_last_tenth: float
    regret: float
    regret_curve: list[dict[str, float]]
