"""A programme's whole configuration as one document (YAML for `jifen program apply`, JSON for the API)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from jifen.errors import InvalidRequest

# The tier ladder is versioned with the rules (rules/schema.py): imported here for the programme file.
from jifen.rules.schema import CODE, EVENT_TYPE, RuleSetDoc, Strict, TierConfig, TierLevel  # noqa: F401


class Expiry(Strict):
    """Rolling validity in months, rounded up to the end of a month/quarter/year, or never.
    `policy: year_end` with `years: 1` is "clear the oldest year every 31 December"."""

    policy: Literal["rolling", "year_end", "never"] = "rolling"
    months: int | None = Field(24, ge=1, le=1200)
    years: int = Field(1, ge=1, le=100)
    round: Literal["none", "month", "quarter", "year"] = "none"

    def columns(self) -> tuple[int | None, str]:
        if self.policy == "never":
            return None, "none"
        if self.policy == "year_end":
            return 12 * self.years, "year"
        return self.months, self.round


class Wallet(Strict):
    code: str = Field(pattern=CODE)
    name: str


class RulesConfig(RuleSetDoc):
    effective_from: dt.datetime | None = None  # now when absent
    note: str | None = None
    # A version without rules stops all earning: only when asked in so many words (a `{}` sent by mistake
    # would otherwise remove every earning rule).
    allow_empty: bool = False

    def doc(self) -> RuleSetDoc:
        """The rule set to publish; refused (422 empty_rule_set) when it has no rules and allow_empty is not set."""
        if not self.rules and not self.allow_empty:
            raise InvalidRequest("the rule set has no rules, which would stop all earning; send allow_empty: true "
                                 "to publish it all the same", code="empty_rule_set")
        return RuleSetDoc.model_validate(self.model_dump(exclude={"effective_from", "note", "allow_empty"}))


class ShowcaseReward(Strict):
    name: str = Field(min_length=1, max_length=100)
    points: int = Field(ge=1)
    value: Decimal = Field(ge=0)  # ¥, as shown to the member


class DoubleValue(Strict):
    """Programme "double-value days": on these local days every reward costs points ÷ factor."""

    days_of_month: list[int] = Field([], max_length=31)
    weekdays: list[int] = Field([], max_length=7)  # 1 = Monday
    factor: Decimal = Field(Decimal(2), gt=1, le=10)

    @model_validator(mode="after")
    def days(self):
        if any(not 1 <= d <= 31 for d in self.days_of_month) or any(not 1 <= d <= 7 for d in self.weekdays):
            raise ValueError("days_of_month are 1-31, weekdays 1 (Monday) - 7")
        return self


RiskAction = Literal["allow", "flag", "review", "block"]


class RiskRule(Strict):
    """A limit and what happens to a transaction beyond it."""

    limit: int = Field(ge=1, le=10**9)
    action: RiskAction


def _settings():
    from jifen.config import get_settings

    return get_settings()


class RiskThresholds(Strict):
    """Score (0-1000) from which a transaction is flagged, sent to review, blocked."""

    flag: int = Field(600, ge=1, le=1000)
    review: int = Field(800, ge=1, le=1000)
    block: int = Field(950, ge=1, le=1001)  # 1001: never blocked by score

    @model_validator(mode="after")
    def ordered(self):
        if not self.flag <= self.review <= self.block:
            raise ValueError("thresholds must satisfy flag <= review <= block")
        return self


# Score points each reason of risk/scoring.py adds, unless a programme changes them (risk.weights);
# the anomaly model's is risk.anomaly_weight.
RISK_WEIGHTS = {"earn_per_minute": 400, "redemptions_per_hour": 400, "shared_device": 350, "shared_ip": 150,
                "new_account": 150, "restricted_before": 200, "honeypot": 500}


class RiskConfig(Strict):
    """Risk control (risk/scoring.py, docs/security.md "Risk control"). Velocity limits default to seed
    001's (the JIFEN_EARN_POINTS_PER_MINUTE / JIFEN_REDEMPTIONS_PER_HOUR settings)."""

    # Points from actions other than purchases, per member per minute (a purchase is never held back by it).
    earn_points_per_minute: RiskRule = Field(
        default_factory=lambda: RiskRule(limit=_settings().earn_points_per_minute, action="flag"))
    redemptions_per_hour: RiskRule = Field(
        default_factory=lambda: RiskRule(limit=_settings().redemptions_per_hour, action="review"))
    accounts_per_device: RiskRule = RiskRule(limit=5, action="flag")  # seed 001: ≥ 5 accounts on one device
    accounts_per_ip: RiskRule = RiskRule(limit=30, action="allow")  # offices and carrier NAT share addresses
    new_account_hours: int = Field(24, ge=0, le=24 * 365)
    thresholds: RiskThresholds = RiskThresholds()
    weights: dict[str, int] = {}  # reason code -> score points, over RISK_WEIGHTS
    anomaly_weight: int = Field(400, ge=0, le=1000)  # the anomaly model's most
    honeypot_action: Literal["review", "block"] = "review"
    freeze_days: int = Field(90, ge=1, le=3660)
    # Maker-checker: a manual adjustment of more points than this (either sign) waits for a second person
    # with points:approve (approvals/service.py); None = every adjustment posts at once.
    adjust_approval_above: int | None = Field(None, ge=1)

    @field_validator("weights")
    @classmethod
    def known_reasons(cls, v: dict[str, int]) -> dict[str, int]:
        for k, w in v.items():
            if k not in RISK_WEIGHTS or not 0 <= w <= 1000:
                raise ValueError(f"weights.{k}: one of {', '.join(RISK_WEIGHTS)}, 0-1000")
        return v


class ProgramConfig(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    point_name: str = Field("積分", min_length=1, max_length=32)
    point_value: Decimal = Field(Decimal("0.01"), gt=0, le=1000)
    timezone: str = "Asia/Shanghai"
    allow_debt: bool = False
    expiry: Expiry = Expiry()
    pending_days: dict[str, int] = {}
    wallets: list[Wallet] = [Wallet(code="points", name="積分")]
    tiers: TierConfig | None = None
    rules: RulesConfig | None = None
    # Named by expiry reminders ("…可兌換價值89元的電烤箱") until the mall's catalogue exists.
    reminder_rewards: list[ShowcaseReward] = []
    double_value: DoubleValue | None = None
    risk: RiskConfig | None = None

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}") from None
        return v

    @field_validator("pending_days")
    @classmethod
    def pending(cls, v: dict[str, int]) -> dict[str, int]:
        for k, days in v.items():
            if not re.match(EVENT_TYPE, k) or not (0 <= days <= 365):
                raise ValueError(f"pending_days.{k}: an event type and 0-365 days")
        return v

    @model_validator(mode="after")
    def references(self):
        wallets = {w.code for w in self.wallets}
        if len(wallets) != len(self.wallets) or not wallets:
            raise ValueError("wallet codes must be unique, and there must be at least one")
        if self.rules is not None and self.rules.tiers is not None:
            raise ValueError("rules.tiers: a programme file gives its tier ladder once, as tiers")
        for r in self.rules.rules if self.rules else []:
            if r.wallet is not None and r.wallet not in wallets:
                raise ValueError(f"rule {r.code!r} names wallet {r.wallet!r}, which is not in wallets")
            if r.award.multiplier == "tier" and self.tiers is None:
                raise ValueError(f"rule {r.code!r} uses the tier multiplier but the programme has no tiers")
        return self


def error_text(exc: ValidationError) -> str:
    """One line per problem, each naming the field: `rules.rules.2.condition: ...`."""
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(document)"
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{where}: {msg}")
    return "; ".join(out)


StrictT = TypeVar("StrictT", bound=Strict)


def parse(model: type[StrictT], data: Any) -> StrictT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(error_text(exc), code="invalid_config") from None


EXAMPLES = Path(__file__).parent / "examples"


def read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}", code="unreadable_file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidRequest(f"{path}: not valid YAML{where}", code="invalid_yaml") from None


def load_yaml(path: Path) -> ProgramConfig:
    """Read and validate a configuration file; errors name the file's bad fields."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InvalidRequest(f"{path}: expected a mapping of programme settings", code="invalid_config")
    return parse(ProgramConfig, data)


def load_example(name: str) -> ProgramConfig:
    return load_yaml(EXAMPLES / f"{name}.yaml")


def load_rules_yaml(path: Path) -> RuleSetDoc:
    """Draft rules from a file holding either a whole programme (its `rules:` block is used) or just a
    rule set (`rules:` as a list, with multipliers / layer_order / budgets beside it)."""
    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("rules"), dict):
        data = data["rules"]
    if not isinstance(data, dict):
        raise InvalidRequest(f"{path}: expected a mapping with a rules list", code="invalid_config")
    data = {k: v for k, v in data.items() if k not in ("effective_from", "note")}
    return parse(RuleSetDoc, data)
