"""Event intake shapes."""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from jifen.freejson import FreeJson
from jifen.rules.schema import EVENT_TYPE
from jifen.strict import Strict

MAX_BATCH = 1000


def visible(member_id: str) -> str:
    """A member id with no invisible character: no control or format character (zero-width space U+200B, BOM
    U+FEFF, the RTL marks), no whitespace. Such an id looks like another member's ("ali\u200bce" is shown as
    "alice"), so it is refused with the field named, not answered `unknown_member`. Not the full pattern of
    `MemberId`: members imported from a legacy system (`jifen legacy import`) may have ids of other letters."""
    bad = next((c for c in member_id if unicodedata.category(c)[0] in "CZ"), None)
    if bad is not None:
        raise ValueError(f"has an invisible or space character (U+{ord(bad):04X})")
    return member_id


class OrderLine(Strict):
    sku: str | None = Field(None, max_length=64)
    category: str | None = Field(None, max_length=64)
    amount: Decimal = Field(ge=0, le=10**10, decimal_places=2)
    quantity: int = Field(1, ge=1, le=10**6)


class EventIn(Strict):
    event_id: str = Field(min_length=1, max_length=128)
    member_id: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(visible)]
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
