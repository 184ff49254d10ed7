"""Event intake shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field, field_validator

from jifen.freejson import FreeJson
from jifen.rules.schema import EVENT_TYPE
from jifen.strict import Strict

MAX_BATCH = 1000


class OrderLine(Strict):
    sku: str | None = Field(None, max_length=64)
    category: str | None = Field(None, max_length=64)
    amount: Decimal = Field(ge=0, le=10**10, decimal_places=2)
    quantity: int = Field(1, ge=1, le=10**6)


class EventIn(Strict):
    event_id: str = Field(min_length=1, max_length=128)
    member_id: str = Field(min_length=1, max_length=64)
    type: str = Field(pattern=EVENT_TYPE)
    occurred_at: dt.datetime
    channel: str | None = Field(None, max_length=32)
    amount: Decimal | None = Field(None, ge=0, le=10**10, decimal_places=2)  # ¥
    order_id: str | None = Field(None, max_length=64)
    lines: list[OrderLine] = Field([], max_length=500)
    attributes: FreeJson = {}

    @field_validator("occurred_at")
    @classmethod
    def aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("occurred_at needs a timezone (e.g. 2026-11-11T10:00:00+08:00)")
        return v.astimezone(dt.UTC)


class EventBatchIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)
