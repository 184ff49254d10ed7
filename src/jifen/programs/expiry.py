"""When awarded points expire under a programme's policy."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

from jifen.programs.models import Program


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day-of-month N months later, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def end_of_period(moment: dt.datetime, period: str, tz: ZoneInfo) -> dt.datetime:
    """The first instant after the local month/quarter/year containing `moment` (its end), in UTC."""
    local = moment.astimezone(tz)
    months = {"month": 1, "quarter": 3 - (local.month - 1) % 3, "year": 13 - local.month}[period]
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first_next = add_months(start.replace(tzinfo=None), months).replace(tzinfo=tz)
    return first_next.astimezone(dt.UTC)


def expiry_for(program: Program, earned_at: dt.datetime) -> dt.datetime | None:
    """Rolling validity (seed 001: 24 months), rounded up to a period end when the programme says so;
    None when the programme's points never expire."""
    if program.expiry_months is None:
        return None
    rolled = add_months(earned_at, program.expiry_months)
    if program.expiry_round in (None, "none"):
        return rolled
    return end_of_period(rolled, program.expiry_round, ZoneInfo(program.timezone))
