"""What this member pays for this reward now — the one answer every face and flow uses (the redemption
itself, the member centre's mall and its confirmation step, the catalogue API, the console, suggestions,
recommendations, automations' gifts): the mall's price now (points or points + cash, a running discount,
the programme's double-value days) with the offer of a campaign's double-value redemption days the member
is in, if its budget still covers the saving. Without a member: the catalogue price."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from jifen.campaigns.redemption_days import offer_for
from jifen.mall.models import Reward
from jifen.mall.service import Price, member_price
from jifen.members.models import Member
from jifen.programs.models import Program

Pricer = Callable[..., Price]  # (reward, pay="points") → Price


def pricer(session: Session, program: Program, member: Member | None, now: dt.datetime) -> Pricer:
    """Prices for one member now: the campaign offer looked up once, for a whole catalogue."""
    offer = offer_for(session, program, member, now) if member is not None else None

    def price_of(reward: Reward, pay: str = "points") -> Price:
        return member_price(program, reward, now, pay, offer)

    return price_of


def price(session: Session, program: Program, member: Member | None, reward: Reward, now: dt.datetime,
          pay: str = "points") -> Price:
    return pricer(session, program, member, now)(reward, pay)
