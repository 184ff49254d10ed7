"""An event priced by the rules in force when it occurred: the member as rules see them, the award
lines, and what the rules gave as kept in the event's result."""

from __future__ import annotations

from decimal import Decimal

from jifen.events.context import Intake
from jifen.events.counters import db_counters
from jifen.events.schemas import EventIn
from jifen.members.models import Member
from jifen.rules.engine import AwardLine, EventFacts, MemberFacts, UsageBook, fire, price
from jifen.rules.schema import TierConfig
from jifen.rules.service import doc_of, ladder


def evaluate(ctx: Intake, ev: EventIn, member: Member, pk: int, book: UsageBook, tier: str | None):
    """(award lines, rule version, the member's tier then) for a stored event, priced with `tier` (the one the
    member has when the event happens: an earlier event of the same batch may have raised it); nothing posted."""
    rule_set = ctx.version_at(ev.occurred_at)
    doc = doc_of(rule_set) if rule_set else None
    who = member_facts(ladder(ctx.program, doc), member, tier, ctx.credit(member))
    if rule_set is None or doc is None:
        return [], None, who.tier
    facts = EventFacts(type=ev.type, occurred_at=ev.occurred_at, amount=ev.amount, channel=ev.channel,
                       order_id=ev.order_id, lines=[li.model_dump() for li in ev.lines], attributes=ev.attributes)
    failed = ctx.failed[ev.event_id] = []  # afresh: a batch may evaluate an event again
    fired = fire(doc, facts, who, db_counters(ctx.session, member.id, pk, ev.occurred_at, ctx.tz), ctx.tz, failed)
    return price(doc, fired, facts, who, ctx.tz, book), rule_set.version, who.tier

def member_facts(cfg: TierConfig | None, member: Member, tier: str | None, credit: int = 100) -> MemberFacts:
    """The member as rules see them, with the tier they had when the event happened and its multiplier in
    `cfg`, the ladder in force then (rules.service.ladder of the event's rule version)."""
    level = (cfg.level(tier) or cfg.levels[0]) if cfg else None
    return MemberFacts(pk=member.id, member_id=member.member_id, tier=level.code if level else tier,
                       tier_multiplier=level.earn_multiplier if level else Decimal(1), joined_at=member.joined_at,
                       birthday=member.birthday, attributes=member.attributes or {}, credit=credit)

def rules_result(ctx: Intake, ev: EventIn, lines: list[AwardLine], paid: list[dict], tier_then) -> dict:
    """What the rules gave an event; `rule_errors` names rules skipped because their condition failed."""
    failed = ctx.failed.pop(ev.event_id, None)
    return {"rules": [line.as_dict() for line in lines], "entries": paid, "member_tier": tier_then,
            **({"rule_errors": failed} if failed else {})}
