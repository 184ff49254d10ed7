"""What every `jifen` sub-command shares: consoles, one-line failures, sessions, date options."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from jifen.config import get_settings
from jifen.db import make_engine, make_sessionmaker

out = Console()
err = Console(stderr=True)
ProgramOpt = Annotated[str, typer.Option("--program", help="programme code")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def sessions():
    return make_sessionmaker(make_engine(get_settings().database_url))


def parse_when(text: str, tz: ZoneInfo, *, end: bool = False) -> dt.datetime:
    """A date (the programme's local day; as an end, the whole day is included) or an ISO date-time."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if end else 0)
            return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"{text!r} is not a date (YYYY-MM-DD) or an ISO date-time")
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(dt.UTC)


def period(timezone: str, start: str, end: str) -> tuple[dt.datetime, dt.datetime]:
    """--from / --to in a programme's timezone: [start of the first day, end of the last day)."""
    tz = ZoneInfo(timezone)
    lo, hi = parse_when(start, tz), parse_when(end, tz, end=True)
    if hi <= lo:
        fail("--to must be after --from")
    return lo, hi
