"""Figures for the programme overview (the console's first page and the KPI answer), computed in SQL
over the ledger (no loops over members)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.db import total
from jifen.events.models import Event
from jifen.ledger.models import MEMBER_KINDS, SYSTEM_KINDS, Account
from jifen.members.models import Member
from jifen.programs.models import Program, Wallet


def wallet_figures(session: Session, program: Program, wallet: Wallet) -> dict:
    balances = dict(session.execute(
        select(Account.kind, total(Account.balance)).where(Account.wallet_id == wallet.id).group_by(Account.kind)
    ).all())
    member = {k: balances.get(k, 0) for k in MEMBER_KINDS}
    system = {k: balances.get(k, 0) for k in SYSTEM_KINDS}
    outstanding = member["available"] + member["pending"] + member["held"] + member["frozen"] + member["debt"]
    return {
        "wallet": wallet,
        "members": member,
        "issued": -system["issuance"],
        "redeemed": system["redemption"],
        "expired": system["expiry"],
        "adjusted": -system["adjustment"],
        "outstanding": outstanding,
        "liability": (Decimal(outstanding) * program.point_value).quantize(Decimal("0.01")),
    }


def overview(session: Session, program: Program) -> dict:
    """The programme's members and each wallet's figures now (the dashboard's period figures:
    dashboard.py)."""
    wallets = session.scalars(select(Wallet).where(Wallet.program_id == program.id).order_by(Wallet.id)).all()
    return {
        "program": program,
        "members": session.scalar(select(func.count()).select_from(Member).where(Member.program_id == program.id)),
        "wallets": [wallet_figures(session, program, w) for w in wallets],
    }


def points_by_rule(session: Session, program: Program, since: dt.datetime) -> dict[str, int]:
    """Points each rule gave since a moment, from the events' stored results (gross of refunds)."""
    out: dict[str, int] = defaultdict(int)
    rows = session.execute(select(Event.result).where(Event.program_id == program.id, Event.occurred_at >= since,
                                                      Event.points > 0).execution_options(yield_per=2000))
    for (result,) in rows:
        for line in result.get("rules", []):
            out[line["rule"]] += line["points"]
    return dict(out)
