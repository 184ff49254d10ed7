"""Who a campaign rule (or an experiment) reaches: a target (tiers, segments, tags) and, inside it, a
deterministic split into a holdout, the members the rollout has reached (灰度, seed 002) and those it has
not reached yet.

A member's place is a stable hash of the audience key and the member id (sha256, not Python's hash(),
which changes between processes), so every process, every replay and every report puts a member in the
same group, and raising the rollout share only adds members: nobody already in is taken out."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from jifen.strict import Strict

Group = Literal["outside", "holdout", "treated", "waiting"]
_SCALE = 16**15


def bucket(key: str, member_id: str) -> float:
    """A number in [0, 1) fixed by (key, member id), uniform over members."""
    digest = hashlib.sha256(f"{key}\x1f{member_id}".encode()).hexdigest()
    return int(digest[:15], 16) / _SCALE


class Audience(Strict):
    """The target is every member when no tier, segment, tag or member list is given; otherwise a member
    must match each one that is given (any of its entries). `holdout` is kept out to measure against; `share` of the
    rest is reached (1 = all of it)."""

    key: str = Field(min_length=1, max_length=64)
    tiers: list[str] = Field(default=[], max_length=50)
    segments: list[str] = Field(default=[], max_length=50)
    tags: list[str] = Field(default=[], max_length=50)
    lists: list[str] = Field(default=[], max_length=10)  # uploaded member lists, kept among the segments
    share: Decimal = Field(Decimal(1), ge=0, le=1)
    holdout: Decimal = Field(Decimal(0), ge=0, lt=1)

    @model_validator(mode="after")
    def some_reach(self):
        if self.share == 0 and self.holdout == 0:
            raise ValueError("share and holdout are both 0: the audience would be empty")
        return self

    def targets(self, tier: str | None, attributes: dict | None) -> bool:
        attributes = attributes or {}
        if self.tiers and (tier or "") not in self.tiers:
            return False
        segments = set(attributes.get("segments") or [])
        if self.segments and not set(self.segments) & segments:
            return False
        if self.lists and not set(self.lists) & segments:
            return False
        return not (self.tags and not set(self.tags) & set(attributes.get("tags") or []))

    def group(self, member_id: str, tier: str | None, attributes: dict | None) -> Group:
        if not self.targets(tier, attributes):
            return "outside"
        b = Decimal(repr(bucket(self.key, member_id)))
        if b < self.holdout:
            return "holdout"
        return "treated" if b < self.holdout + self.share * (1 - self.holdout) else "waiting"
