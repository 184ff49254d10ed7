"""What one ingest call works with (Intake): the programme, its clock, its rule versions and wallets,
and what the batch has learnt so far (tier measures, credit scores, rules that failed)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.engagement.models import MemberCredit
from jifen.events.schemas import EventIn
from jifen.events.store import (
    claim,
)
from jifen.events.usage import load_usage
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.rules.engine import UsageBook
from jifen.rules.models import RuleSet
from jifen.rules.schema import TierConfig
from jifen.rules.service import doc_of, ladder


@dataclass
class Intake:
    """What one ingest call works with: the programme, its clock, its rule versions and wallets."""

    session: Session
    program: Program
    now: dt.datetime
    actor: str | None
    versions: list[RuleSet]
    wallets: dict[str | None, Wallet]
    measures: dict[int, Decimal] = field(default_factory=dict)  # tier measures known in this batch
    credits: dict[int, int] = field(default_factory=dict)
    failed: dict[str, list[dict]] = field(default_factory=dict)  # rules skipped per event id (rules/engine.fire)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.program.timezone)

    def version_at(self, at: dt.datetime) -> RuleSet | None:
        """The version in force at `at`: the latest effective date not after it (newest version on ties)."""
        live = [v for v in self.versions if v.effective_from <= at]
        return max(live, key=lambda v: (v.effective_from, v.version)) if live else None

    def ladder_at(self, at: dt.datetime) -> TierConfig | None:
        """The tier ladder in force at `at` (it travels with the rule versions)."""
        version = self.version_at(at)
        return ladder(self.program, doc_of(version) if version else None)

    @functools.cached_property
    def ladder(self) -> TierConfig | None:
        """The ladder tiers are reached by now (the qualifying measure is counted up to now as well)."""
        return self.ladder_at(self.now)

    def measure_after(self, member: Member, ev: EventIn, points: int) -> dict[int, Decimal] | None:
        """The member's tier measure with this event, read once per batch and then kept up to date in
        memory (None for the score basis, which is read from the database each time)."""
        cfg = self.ladder
        if cfg is None or cfg.basis == "score":
            return None
        in_window = self.now - dt.timedelta(days=cfg.window_days) < ev.occurred_at <= self.now
        gain = Decimal(0)
        if in_window and cfg.basis == "points":
            gain = Decimal(points)
        elif in_window and ev.type == "purchase":
            gain = ev.amount or Decimal(0)
        if member.id in self.measures:
            self.measures[member.id] += gain
        else:  # the stored event already counts its amount; its points are saved after this
            known = tiers.measures(self.session, self.program, cfg, self.now, [member.id]).get(member.id, Decimal(0))
            self.measures[member.id] = known + (gain if cfg.basis == "points" else 0)
        return {member.id: self.measures[member.id]}

    def credit(self, member: Member) -> int:
        """The member's credit score (100 when never lowered), read once per intake."""
        if member.id not in self.credits:
            self.credits[member.id] = self.session.scalar(
                select(MemberCredit.score).where(MemberCredit.member_pk == member.id)) or 100
        return self.credits[member.id]

    def scope(self, wallet: str | None) -> ops.Scope:
        return ops.Scope(self.session, self.program, self.wallets[wallet], self.now, actor=self.actor)

    def usage_book(self) -> UsageBook:
        return UsageBook(lambda keys: load_usage(self.session, self.program.id, keys))

    def claim(self, rows: list[dict]) -> dict[str, int]:
        """Store new events; {event_id: pk} of those stored (an id already taken is left out)."""
        return claim(self.session, rows)

def open_intake(session: Session, program: Program, now: dt.datetime, actor: str | None) -> Intake:
    versions = list(session.scalars(select(RuleSet).where(RuleSet.program_id == program.id)))
    wallets: dict[str | None, Wallet] = {w.code: w for w in program.wallets}
    wallets[None] = next(w for w in program.wallets if w.is_default)
    return Intake(session, program, now, actor, versions, wallets)
