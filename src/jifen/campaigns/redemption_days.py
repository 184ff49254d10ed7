"""Double-value redemption days: which campaign, if any, halves (÷ factor) a member's points prices in the
mall now. A campaign applies while it is live, in its window, on one of its local days, to the members its
rollout has reached (not the holdout, not those still waiting), and while its budget has points left.
Several at once: the largest factor, then the earliest campaign — offers do not stack."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.campaigns.models import Campaign
from jifen.campaigns.schemas import RedemptionDays
from jifen.campaigns.service import audience, effect, rule_code
from jifen.mall.service import Offer
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.rules import budgets


def on_day(days: RedemptionDays, program: Program, now: dt.datetime) -> bool:
    if not days.days_of_month and not days.weekdays:
        return True  # every day of the window
    local = now.astimezone(ZoneInfo(program.timezone))
    return local.day in days.days_of_month or local.isoweekday() in days.weekdays


def offer_for(session: Session, program: Program, member: Member, now: dt.datetime) -> Offer | None:
    live = session.scalars(select(Campaign).where(
        Campaign.program_id == program.id, Campaign.status == "live", Campaign.starts_at <= now,
        Campaign.ends_at > now).order_by(Campaign.id))
    found: list[Offer] = []
    for c in live:
        days = effect(c).double_value
        if days is None or not on_day(days, program, now):
            continue
        if audience(c).group(member.member_id, member.tier, member.attributes) != "treated":
            continue
        left = c.budget - budgets.used(session, program.id, rule_code(c))
        if left > 0:
            found.append(Offer(campaign=c.code, name=c.name, factor=days.factor, budget=c.budget, budget_left=left,
                               sponsor_share=c.sponsor_share if c.sponsor else None))
    return max(found, key=lambda o: o.factor, default=None)  # (max keeps the first of equals: the earliest)
