"""Automation definitions as the API and CLI take them, and the views they answer with."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from jifen.rules.schema import CODE
from jifen.strict import Strict

CHANNELS = Literal["inapp", "sms", "email", "wechat"]


class MessageAction(Strict):
    """A marketing message through the outbox (sent only where the member consented to the channel).
    {name} in the title or body is replaced by the member's fact of that name: {balance}, {days_since_purchase} …"""
    type: Literal["message"]
    channels: list[CHANNELS] = Field(min_length=1, max_length=4)
    title: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=500)


class AwardAction(Strict):
    """Points through the ledger, once per member and occurrence."""
    type: Literal["award"]
    points: int = Field(ge=1, le=1_000_000)
    reason: str = Field("automation", min_length=1, max_length=200)


class CouponAction(Strict):
    """A coupon reward of the mall given as a gift: its points awarded and redeemed for it at once."""
    type: Literal["coupon"]
    reward: str = Field(min_length=1, max_length=64)


class TaskAction(Strict):
    """An invitation to an engagement task (its name and points in an in-app message unless channels say)."""
    type: Literal["task"]
    task: str = Field(min_length=1, max_length=64)
    channels: list[CHANNELS] = Field(["inapp"], min_length=1, max_length=4)


Action = Annotated[MessageAction | AwardAction | CouponAction | TaskAction, Field(discriminator="type")]


class AutomationIn(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    trigger: Literal["schedule", "event"]
    every: Literal["hour", "day", "week"] | None = None  # schedule
    event_type: str | None = Field(None, min_length=1, max_length=32)  # event
    condition: str = Field(min_length=1, max_length=4096)
    actions: list[Action] = Field(min_length=1, max_length=5)
    repeat: Literal["lapse", "once", "day", "week", "month"] = "lapse"
    active: bool = True


class RunIn(Strict):
    dry_run: bool = False


class AutomationOut(BaseModel):
    code: str
    name: str
    trigger: str
    every: str | None
    event_type: str | None
    condition: str
    actions: list[dict]
    repeat: str
    active: bool
    last_run_at: str | None
    next_run_at: str | None


class MatchOut(BaseModel):
    member_id: str
    occurrence: str
    status: str  # done, repeat, failed; in a dry run: would, repeat
    actions: list[dict]
    error: str | None = None
    facts: dict | None = None  # in a dry run: what the condition saw


class RunOut(BaseModel):
    run_id: int | None  # None for a dry run: nothing is written
    automation: str
    dry_run: bool
    cause: str
    started_at: str
    evaluated: int
    matched: int
    acted: int
    repeats: int
    failed: int
    errors: list[str]
    members: list[MatchOut]
