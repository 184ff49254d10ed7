"""What every `jifen` sub-command shares: consoles, one-line failures, sessions, date options, and the
progress of long steps (Stages)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column

from jifen.config import get_settings
from jifen.db import make_engine, make_read_sessionmaker, make_sessionmaker

out = Console()
err = Console(stderr=True)
ProgramOpt = Annotated[str, typer.Option("--program", help="programme code")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def sessions(read_only: bool = False):
    """Sessions on the configured database; read_only ones take no writer lock on SQLite (a long check)."""
    engine = make_engine(get_settings().database_url)
    return make_read_sessionmaker(engine) if read_only else make_sessionmaker(engine)


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


def took(seconds: float) -> str:
    whole = round(seconds)
    return f"{seconds:.1f} s" if seconds < 59.5 else f"{whole // 60} min {whole % 60:02d} s"


class Stages:
    """The long steps of `jifen demo` and `jifen up`, as they happen: a line as a step starts and one as it ends,
    with its time. In between, on a terminal, a live bar with what is done so far; otherwise (piped, CI) a line
    at about every 10 %."""

    def __init__(self, console=out):
        self.console = console
        self.bar: Progress | None = None
        if console.is_terminal and not console.is_dumb_terminal:
            self.bar = Progress(SpinnerColumn(), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                                     ratio=1)),
                                console=console, transient=True, expand=True)

    def __enter__(self) -> Stages:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()

    def _line(self, text: str) -> None:
        if self.bar:
            self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.console.file, flush=True)  # as it happens, even when stdout is a pipe

    def start(self, title: str, total: int | None = None) -> None:
        self.total, self.began, self.next = total, time.monotonic(), 10
        self.said = self.began
        self._line(f"{title} …")
        if self.bar:
            self.task = self.bar.add_task("", total=total)
            self.bar.refresh()

    def update(self, done: int, detail: str = "") -> None:
        if self.bar:
            self.bar.update(self.task, completed=done, description=detail)
        elif self.total and done * 100 >= self.next * self.total:
            pct = done * 100 // self.total
            self.next = pct // 10 * 10 + 10
            if time.monotonic() - self.said >= 1 and done < self.total:  # a quick step just starts and ends
                self._line(f"  {pct:3d}%  {done:,}/{self.total:,}" + (f"  {detail}" if detail else ""))
                self.said = time.monotonic()

    def finish(self, summary: str = "") -> None:
        if self.bar:
            self.bar.remove_task(self.task)
            self.bar.refresh()
        self._line(f"  done in {took(time.monotonic() - self.began)}" + (f": {summary}" if summary else ""))
