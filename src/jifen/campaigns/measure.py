"""What campaign reports and experiment results are measured on: the members of an audience with their
group, and what each member did in a period (purchases, net spend, redemption orders), zero when nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.events.models import Event
from jifen.lazy import lazy_import
from jifen.mall.models import Redemption
from jifen.members.models import Member
from jifen.programs.models import Program

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")


def population(session: Session, program: Program, group: Callable[[str, str | None, dict | None], str | None]) -> pl.DataFrame:
    """member_pk and group of every member `group` places (None: not in it). The hash runs per member in
    Python (sha256); the measures that follow are set-oriented."""
    rows = session.execute(select(Member.id, Member.member_id, Member.tier, Member.attributes)
                           .where(Member.program_id == program.id, Member.erased_at.is_(None)))
    placed = [(pk, g) for pk, mid, tier, attrs in rows if (g := group(mid, tier, attrs)) is not None]
    return pl.DataFrame(placed, schema={"member_pk": pl.Int64, "group": pl.Utf8}, orient="row")


def behaviour(session: Session, program: Program, members: pl.DataFrame, start: dt.datetime,
              end: dt.datetime) -> pl.DataFrame:
    """`members` with purchases, spend (net of refunds) and redemptions (orders placed) in [start, end)."""
    buys = session.execute(select(Event.member_pk, func.count(), func.coalesce(func.sum(Event.amount), 0),
                                  func.coalesce(func.sum(Event.refunded_amount), 0))
                           .where(Event.program_id == program.id, Event.type == "purchase",
                                  Event.occurred_at >= start, Event.occurred_at < end).group_by(Event.member_pk)).all()
    orders = session.execute(select(Redemption.member_pk, func.count())
                             .where(Redemption.program_id == program.id, Redemption.created_at >= start,
                                    Redemption.created_at < end).group_by(Redemption.member_pk)).all()
    bought = pl.DataFrame([(pk, n, float(amount or 0) - float(refunded or 0)) for pk, n, amount, refunded in buys],
                          schema={"member_pk": pl.Int64, "purchases": pl.Int64, "spend": pl.Float64}, orient="row")
    redeemed = pl.DataFrame(orders, schema={"member_pk": pl.Int64, "redemptions": pl.Int64}, orient="row")
    return (members.join(bought, on="member_pk", how="left").join(redeemed, on="member_pk", how="left")
            .with_columns(pl.col("purchases").fill_null(0), pl.col("spend").fill_null(0.0),
                          pl.col("redemptions").fill_null(0)))
