"""Request bodies of the ledger API. Unknown fields are refused, points are strict integers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AwareDatetime, Field, StrictInt

from jifen.freejson import FreeJson
from jifen.ledger.operations import MAX_POINTS
from jifen.strict import Strict

MemberId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
Points = Annotated[StrictInt, Field(gt=0, le=MAX_POINTS, description="whole points, 1 to 10^12")]
SignedPoints = Annotated[StrictInt, Field(ge=-MAX_POINTS, le=MAX_POINTS, description="non-zero whole points")]
WalletCode = Annotated[str | None, Field(default=None, max_length=64, description="default wallet when omitted")]
Reference = Annotated[str | None, Field(default=None, max_length=200, description="e.g. the order number")]
Reason = Annotated[str | None, Field(default=None, max_length=500)]


Body = Strict


class AwardIn(Body):
    member_id: MemberId
    points: Points
    wallet: WalletCode = None
    occurred_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = Field(None, description="overrides the programme's expiry policy")
    pending_until: AwareDatetime | None = Field(None, description="points stay pending until then")
    reference: Reference = None
    reason: Reason = None


class SpendIn(Body):
    member_id: MemberId
    points: Points
    wallet: WalletCode = None
    reference: Reference = None
    reason: Reason = None
    # Where the spend happens (risk control's device / IP graph); optional.
    device_id: str | None = Field(None, min_length=1, max_length=128)
    ip: str | None = Field(None, min_length=1, max_length=64)


class TransferIn(Body):
    from_member_id: MemberId
    to_member_id: MemberId
    points: Points
    wallet: WalletCode = None
    reference: Reference = None
    reason: Reason = None


class AdjustIn(Body):
    member_id: MemberId
    points: SignedPoints = Field(description="positive credits, negative debits")
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    wallet: WalletCode = None
    reference: Reference = None


class ReverseIn(Body):
    entry_id: Annotated[StrictInt, Field(gt=0)]
    points: Points | None = Field(None, description="part of the entry to reverse; all that is left if omitted")
    reason: Reason = None


class FreezeIn(Body):
    member_id: MemberId
    points: Points | None = Field(None, description="all available (or frozen) points if omitted")
    wallet: WalletCode = None
    reason: Reason = None


class HoldIn(Body):
    member_id: MemberId
    points: Points
    wallet: WalletCode = None
    reference: Reference = None
    expires_at: AwareDatetime | None = Field(None, description="released automatically after this time")


class MemberIn(Body):
    member_id: MemberId
    name: Annotated[str | None, Field(max_length=200)] = None
    phone: Annotated[str | None, Field(max_length=32)] = None
    email: Annotated[str | None, Field(max_length=254)] = None
    attributes: FreeJson = Field(default_factory=dict)
    joined_at: AwareDatetime | None = None
    birthday: dt.date | None = None
