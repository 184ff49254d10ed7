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
from jifen.ledger.models import MEMBER_KINDS, SYSTEM_KINDS, Account, JournalEntry
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


def overview(session: Session, program: Program, now: dt.datetime, days: int = 30) -> dict:
    wallets = session.scalars(select(Wallet).where(Wallet.program_id == program.id).order_by(Wallet.id)).all()
    since = now - dt.timedelta(days=days)
    by_type = session.execute(
        select(JournalEntry.type, func.count(), total(JournalEntry.points))
        .where(JournalEntry.program_id == program.id, JournalEntry.occurred_at >= since)
        .group_by(JournalEntry.type).order_by(func.count().desc())
    ).all()
    return {
        "program": program,
        "members": session.scalar(select(func.count()).select_from(Member).where(Member.program_id == program.id)),
        "wallets": [wallet_figures(session, program, w) for w in wallets],
        "by_type": by_type,
        "days": days,
        "daily": daily_flow(session, program, wallets[0], since, now),
    }


def daily_flow(session: Session, program: Program, wallet: Wallet, since: dt.datetime, now: dt.datetime) -> list:
    """Points awarded and spent per day (by occurred_at, UTC days) in the default wallet."""
    day = func.date(JournalEntry.occurred_at)
    rows = session.execute(
        select(day, JournalEntry.type, total(JournalEntry.points))
        .where(JournalEntry.program_id == program.id, JournalEntry.wallet_id == wallet.id,
               JournalEntry.occurred_at >= since, JournalEntry.type.in_(("award", "spend", "capture")))
        .group_by(day, JournalEntry.type)
    ).all()
    flow: dict[str, dict[str, int]] = {}
    for d, kind, points in rows:
        slot = flow.setdefault(str(d), {"earned": 0, "spent": 0})
        slot["earned" if kind == "award" else "spent"] += points
    days = [(since + dt.timedelta(days=i)).date().isoformat() for i in range((now - since).days + 1)]
    return [(d, flow.get(d, {}).get("earned", 0), flow.get(d, {}).get("spent", 0)) for d in days]


def points_by_rule(session: Session, program: Program, since: dt.datetime) -> dict[str, int]:
    """Points each rule gave since a moment, from the events' stored results (gross of refunds)."""
    out: dict[str, int] = defaultdict(int)
    rows = session.execute(select(Event.result).where(Event.program_id == program.id, Event.occurred_at >= since,
                                                      Event.points > 0).execution_options(yield_per=2000))
    for (result,) in rows:
        for line in result.get("rules", []):
            out[line["rule"]] += line["points"]
    return dict(out)
