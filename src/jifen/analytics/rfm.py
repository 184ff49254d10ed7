"""RFM: recency (days since the last purchase), frequency and monetary value (purchases and net spend in
the last year), quintile scores 1–5 and seed 001's named segments, computed column-wise with Polars.
Analytics only reads: members/segments.py stores a member's segment where rules read it (`member.segments`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.lazy import lazy_import
from jifen.ledger.models import AVAILABLE, Account
from jifen.programs.models import Program, Wallet

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")

WINDOW_DAYS = 365
# Seed 001 (會員分層運營): high value R ≤ 7 days and F ≥ 3; medium R ≤ 30 and F 1–2; churn warning R ≥ 60;
# dormant R ≥ 90; low frequency F ≤ 1. The first that matches, in this order, names the segment.
# (Each condition is built when rfm() runs: building it at import would import Polars with the module.)
SEGMENTS: tuple[tuple[str, Callable[[], pl.Expr]], ...] = (
    ("休眠", lambda: pl.col("recency") >= 90),
    ("流失預警", lambda: pl.col("recency") >= 60),
    ("高價值", lambda: (pl.col("recency") <= 7) & (pl.col("frequency") >= 3)),
    ("中價值", lambda: (pl.col("recency") <= 30) & pl.col("frequency").is_between(1, 2)),
    ("低頻", lambda: pl.col("frequency") <= 1),
)


def rfm(frames: dict[str, pl.DataFrame], as_of: dt.datetime) -> pl.DataFrame:
    """One row per member with a purchase: recency, frequency, monetary, r/f/m scores, rfm, segment."""
    since = as_of - dt.timedelta(days=WINDOW_DAYS)
    buys = frames["events"].filter((pl.col("type") == "purchase") & (pl.col("occurred_at") <= as_of))
    last = buys.group_by("member_pk").agg(pl.col("occurred_at").max().alias("last"))
    window = (buys.filter(pl.col("occurred_at") > since)
              .group_by("member_pk").agg(pl.len().alias("frequency"),
                                         (pl.col("amount").fill_null(0) - pl.col("refunded")).sum().alias("monetary")))
    table = (last.join(window, on="member_pk", how="left")
             .with_columns(pl.col("frequency").fill_null(0), pl.col("monetary").fill_null(0.0),
                           ((pl.lit(as_of) - pl.col("last")).dt.total_days()).alias("recency")))

    def score(column: str, reverse: bool = False) -> pl.Expr:
        """Quintile 1–5, 5 for the best fifth (the most recent, the most frequent, the biggest spenders)."""
        value = -pl.col(column) if reverse else pl.col(column)
        return (value.rank("average") / pl.len() * 5).ceil().clip(1, 5).cast(pl.Int8)

    segment = pl.lit("一般")
    for name, condition in reversed(SEGMENTS):
        segment = pl.when(condition()).then(pl.lit(name)).otherwise(segment)
    return (table.with_columns(score("recency", reverse=True).alias("r"), score("frequency").alias("f"),
                               score("monetary").alias("m"))
            .with_columns((pl.col("r").cast(pl.Utf8) + pl.col("f").cast(pl.Utf8) + pl.col("m").cast(pl.Utf8))
                          .alias("rfm"), segment.alias("segment"))
            .join(frames["members"].select("member_pk", "member_id"), on="member_pk")
            .select("member_id", "member_pk", "recency", "frequency", "monetary", "r", "f", "m", "rfm", "segment")
            .sort("member_id"))


SEGMENT_NAMES = frozenset({name for name, _ in SEGMENTS} | {"一般"})


def segment_of(table: pl.DataFrame) -> dict[int, str]:
    """{member pk: segment} of an rfm() table, for members/segments.py to store."""
    return dict(zip(table["member_pk"].to_list(), table["segment"].to_list(), strict=True))


ORDER = tuple(name for name, _ in SEGMENTS) + ("一般",)  # the segments in the order seed 001 names them


def segment_summary(table: pl.DataFrame, points: pl.DataFrame) -> list[dict]:
    """Per segment of an rfm() table: members, their net spend in the window, the points they hold now
    (`points`: member_pk, points), mean recency and frequency — every segment, empty ones as zeros."""
    held = table.join(points, on="member_pk", how="left").with_columns(pl.col("points").fill_null(0))
    grouped = {row["segment"]: row for row in held.group_by("segment").agg(
        pl.len().alias("members"), pl.col("monetary").sum().round(2).alias("spend"), pl.col("points").sum(),
        pl.col("recency").mean().round(1).alias("recency"), pl.col("frequency").mean().round(2).alias("frequency"),
    ).to_dicts()}
    empty = {"members": 0, "spend": 0.0, "points": 0, "recency": None, "frequency": None}
    return [{"segment": name} | {k: v for k, v in grouped.get(name, empty).items() if k != "segment"}
            for name in ORDER]


def points_held(session: Session, program: Program) -> pl.DataFrame:
    """member_pk, points: each member's available points now, over the programme's wallets (SQL-grouped)."""
    rows = session.execute(select(Account.member_pk, func.sum(Account.balance))
                           .join(Wallet, Wallet.id == Account.wallet_id)
                           .where(Wallet.program_id == program.id, Account.kind == AVAILABLE,
                                  Account.member_pk.is_not(None)).group_by(Account.member_pk)).all()
    return pl.DataFrame(rows, schema={"member_pk": pl.Int64, "points": pl.Int64}, orient="row")
