"""The analytics read side: the programme's events and journal as Polars frames (one query each, read
through SQLAlchemy from SQLite or PostgreSQL), or from a Parquet export. Every computation downstream is
column-wise (Polars / DuckDB), never a Python loop over members, so the same expressions can move to a
distributed engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from jifen.events.models import Event
from jifen.lazy import lazy_import
from jifen.ledger.models import JournalEntry
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.programs.models import Program

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")

TABLES = ("members", "events", "entries", "redemptions", "awards")


def _frame(session: Session, stmt, schema: dict) -> pl.DataFrame:
    rows = session.execute(stmt).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def load(session: Session, program: Program, only: Iterable[str] = TABLES,
         event_types: Iterable[str] | None = None, since: dt.datetime | None = None) -> dict[str, pl.DataFrame]:
    """members (no personal data), events, journal entries, redemptions, and the points each rule paid —
    or only the tables named (a page that needs two tables reads two), events only of `event_types`, and
    events, entries, orders and awards only from `since` on (members: all of them)."""
    wanted = set(only)
    unknown = wanted - set(TABLES)
    if unknown:
        raise ValueError(f"no analytics table {', '.join(sorted(unknown))}")
    out = {}
    if "members" in wanted:
        out["members"] = _frame(session, select(Member.id, Member.member_id, Member.tier, Member.joined_at)
                                .where(Member.program_id == program.id),
                                {"member_pk": pl.Int64, "member_id": pl.Utf8, "tier": pl.Utf8,
                                 "joined_at": pl.Datetime("us", "UTC")})
    if "events" in wanted:
        stmt = (select(Event.member_pk, Event.type, Event.channel, Event.occurred_at, Event.amount,
                       Event.refunded_amount, Event.points, Event.points_reversed)
                .where(Event.program_id == program.id))
        if event_types is not None:
            stmt = stmt.where(Event.type.in_(list(event_types)))
        if since is not None:
            stmt = stmt.where(Event.occurred_at >= since)
        out["events"] = _frame(session, stmt,
                               {"member_pk": pl.Int64, "type": pl.Utf8, "channel": pl.Utf8,
                                "occurred_at": pl.Datetime("us", "UTC"), "amount": pl.Float64,
                                "refunded": pl.Float64, "points": pl.Int64, "points_reversed": pl.Int64})
    if "entries" in wanted:
        out["entries"] = _frame(session, select(JournalEntry.id, JournalEntry.type, JournalEntry.member_pk,
                                                JournalEntry.points, JournalEntry.occurred_at, JournalEntry.reference,
                                                JournalEntry.reverses_entry_id)
                                .where(JournalEntry.program_id == program.id,
                                       *([JournalEntry.occurred_at >= since] if since else [])),
                                {"entry_id": pl.Int64, "type": pl.Utf8, "member_pk": pl.Int64, "points": pl.Int64,
                                 "occurred_at": pl.Datetime("us", "UTC"), "reference": pl.Utf8, "reverses": pl.Int64})
    if "redemptions" in wanted:
        out["redemptions"] = _frame(session, select(Redemption.member_pk, Reward.code, Reward.name,
                                                    Redemption.quantity, Redemption.points, Reward.cost,
                                                    Redemption.status, Redemption.created_at)
                                    .join(Reward, Reward.id == Redemption.reward_id)
                                    .where(Redemption.program_id == program.id,
                                           *([Redemption.created_at >= since] if since else [])),
                                    {"member_pk": pl.Int64, "reward": pl.Utf8, "name": pl.Utf8, "quantity": pl.Int64,
                                     "points": pl.Int64, "cost": pl.Float64, "status": pl.Utf8,
                                     "created_at": pl.Datetime("us", "UTC")})
    if "awards" in wanted:
        results = _frame(session, select(Event.member_pk, Event.channel, Event.occurred_at, Event.amount,
                                         cast(Event.result, Text))
                         .where(Event.program_id == program.id, *([Event.occurred_at >= since] if since else [])),
                         {"member_pk": pl.Int64, "channel": pl.Utf8, "occurred_at": pl.Datetime("us", "UTC"),
                          "amount": pl.Float64, "result": pl.Utf8})
        # One row per rule that paid for an event (from the events' stored results), decoded column-wise.
        paid = pl.Struct({"rules": pl.List(pl.Struct({"rule": pl.Utf8, "layer": pl.Utf8, "points": pl.Int64}))})
        out["awards"] = (results.with_columns(pl.col("result").str.json_decode(paid).struct.field("rules")
                                              .alias("rules"))
                         .drop("result").explode("rules").unnest("rules").drop_nulls("rule"))
    return out


def export(frames: dict[str, pl.DataFrame], directory: Path) -> dict[str, int]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.write_parquet(directory / f"{name}.parquet")
    return {name: frame.height for name, frame in frames.items()}


def read(directory: Path) -> dict[str, pl.DataFrame]:
    return {name: pl.read_parquet(directory / f"{name}.parquet") for name in TABLES}
