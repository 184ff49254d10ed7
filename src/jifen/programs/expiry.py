"""When awarded points expire under a programme's policy."""

from __future__ import annotations

import calendar
import datetime as dt

from jifen.programs.models import Program


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day-of-month N months later, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expiry_for(program: Program, earned_at: dt.datetime) -> dt.datetime | None:
    """Rolling validity (seed 001: 24 months); None when the programme's points never expire."""
    if program.expiry_months is None:
        return None
    return add_months(earned_at, program.expiry_months)
