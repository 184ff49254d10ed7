"""The points economy's health month by month, for the console's economy page: points issued, redeemed and
expired with the consumption and active rates (the dashboard's KPI definitions, kpis.py) beside the seeds'
healthy ranges (dashboard.TARGETS), and the points outstanding and their liability in ¥ at each month's end
(the members' accounts, summed from the ledger's postings). Reads only the tables it needs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.analytics import frames, kpis
from jifen.ledger.models import MEMBER_KINDS, Account, JournalEntry, Posting
from jifen.programs.models import Program, Wallet

MONTHS = (6, 12, 24)  # the periods the page offers


def month_starts(now: dt.datetime, tz: str, months: int) -> list[dt.datetime]:
    """The first instants (UTC) of the last `months` programme-calendar months, this one included, and of
    the next month (the end of the last)."""
    local = now.astimezone(ZoneInfo(tz))
    index = local.year * 12 + local.month - 1
    return [dt.datetime(i // 12, i % 12 + 1, 1, tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
            for i in range(index - months + 1, index + 2)]


def outstanding_before(session: Session, program: Program, moments: list[dt.datetime]) -> list[int]:
    """Points in members' accounts (available, pending, held, frozen, debt: overview.wallet_figures' sum)
    just before each moment: the balances now less the postings to them since — one aggregate query, no
    posting leaves the database."""
    now_total = session.scalar(select(func.coalesce(func.sum(Account.balance), 0))
                               .join(Wallet, Wallet.id == Account.wallet_id)
                               .where(Wallet.program_id == program.id, Account.kind.in_(MEMBER_KINDS)))
    since = session.execute(select(*[func.coalesce(func.sum(Posting.amount).filter(JournalEntry.occurred_at >= m), 0)
                                     for m in moments])
                            .select_from(Posting).join(JournalEntry, JournalEntry.id == Posting.entry_id)
                            .join(Account, Account.id == Posting.account_id)
                            .where(JournalEntry.program_id == program.id, JournalEntry.occurred_at >= min(moments),
                                   Account.kind.in_(MEMBER_KINDS))).one()
    return [int(now_total or 0) - int(later) for later in since]


def monthly_health(session: Session, program: Program, now: dt.datetime, months: int) -> list[dict]:
    """One row per month, oldest first; the current month runs to `now`."""
    if months not in MONTHS:
        raise ValueError(f"months must be one of {', '.join(map(str, MONTHS))} (got {months})")
    bounds = month_starts(now, program.timezone, months)
    data = frames.load(session, program, ("members", "events", "entries"), since=bounds[0])
    ends = [*bounds[1:-1], now]
    held = outstanding_before(session, program, ends)
    out = []
    for start, end, outstanding in zip(bounds[:-1], ends, held, strict=True):
        row = (kpis.kpis(data, start, end, program.point_value) or [{}])[0]
        out.append({
            "month": start.astimezone(ZoneInfo(program.timezone)).strftime("%Y-%m"),
            "issued": row.get("issued", 0), "redeemed": row.get("redeemed", 0), "expired": row.get("expired", 0),
            "consumption_rate": row.get("consumption_rate"), "active_rate": row.get("active_rate"),
            "outstanding": outstanding,
            "liability": (Decimal(outstanding) * program.point_value).quantize(Decimal("0.01")),
        })
    return out
