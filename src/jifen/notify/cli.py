"""`jifen notify`: run the dispatcher once, the call list, dead letters, the Redis leaderboards."""

from __future__ import annotations

import csv
import sys
from typing import Annotated

import typer
from sqlalchemy import select

from jifen.clikit import ProgramOpt, out, sessions
from jifen.db import run_in_transaction, utcnow

notify_app = typer.Typer(help="Notifications: dispatch, call list, dead letters.", no_args_is_help=True)


@notify_app.command("dispatch")
def notify_dispatch():
    """Send what is due now (fan out new messages, deliver, retry), once."""
    from jifen.notify.dispatcher import run_once

    r = run_once(sessions())
    out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in r.items()))


@notify_app.command("call-list")
def notify_call_list(program: ProgramOpt = "default",
                     min_points: Annotated[int, typer.Option(help="balance above which members get a call")] = 5000,
                     days: Annotated[int, typer.Option(min=1, max=93, help="points expiring within")] = 31):
    """CSV of members with a large balance whose points expire soon (seed 001: call them)."""
    from jifen.notify.reminders import call_list
    from jifen.programs.service import get_program

    with sessions()() as s:
        rows = call_list(s, get_program(s, program), utcnow(), min_points, days)
    writer = csv.DictWriter(sys.stdout, ["member_id", "name", "phone", "balance", "expiring", "first_expiry"])
    writer.writeheader()
    writer.writerows(rows)


@notify_app.command("replay")
def notify_replay(program: ProgramOpt = "default"):
    """Put every dead-lettered delivery of the programme back in line."""
    from jifen.notify.dispatcher import replay
    from jifen.notify.models import Delivery
    from jifen.programs.service import get_program

    def work(s):
        ids = list(s.scalars(select(Delivery.id).where(Delivery.program_id == get_program(s, program).id,
                                                       Delivery.status == "dead")))
        return replay(s, ids, utcnow())

    out.print(f"{run_in_transaction(sessions(), work)} dead deliveries back in line")


@notify_app.command("rebuild-boards")
def notify_rebuild_boards(program: ProgramOpt = "default"):
    """Refill the Redis leaderboards of the current periods from the journal (JIFEN_REDIS_URL)."""
    from jifen.clikit import fail
    from jifen.config import get_settings
    from jifen.engagement.boards import rebuild
    from jifen.programs.service import get_program

    url = get_settings().redis_url
    if not url:
        fail("JIFEN_REDIS_URL is not set: the leaderboards are computed from the database")
    with sessions()() as s:
        done = rebuild(url, s, get_program(s, program), utcnow())
    out.print(", ".join(f"{period}: {n} members" for period, n in done.items()))
