"""The points economy over time and members' lifecycle: monthly issued vs redeemed with a devaluation
warning, top rewards, cost per point, cohort retention, lifecycle stages and churn risk."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, cast

from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")

HEALTHY_CONSUMPTION = (0.30, 0.40)  # seed 001: a consumption rate of 30–40 % is healthy


def monthly(frames: dict[str, pl.DataFrame], tz: str) -> list[dict]:
    """Per month: issued, redeemed, expired, consumption rate, and a warning when points pile up."""
    e = frames["entries"].with_columns(pl.col("occurred_at").dt.convert_time_zone(tz).dt.strftime("%Y-%m")
                                       .alias("month"))
    table = e.group_by("month").agg(
        pl.col("points").filter(pl.col("type") == "award").sum().alias("issued"),
        pl.col("points").filter(pl.col("type").is_in(["spend", "capture"])).sum().alias("redeemed"),
        pl.col("points").filter(pl.col("type") == "expire").sum().alias("expired")).sort("month")
    out = []
    for row in table.to_dicts():
        rate = row["redeemed"] / row["issued"] if row["issued"] else None
        warning = None
        if rate is not None and rate < HEALTHY_CONSUMPTION[0]:
            warning = "points pile up: consumption below 30 % (devaluation risk — more or cheaper rewards?)"
        elif rate is not None and rate > HEALTHY_CONSUMPTION[1] * 2:
            warning = "redeemed far more than issued: check the points budget"
        out.append(row | {"consumption_rate": round(rate, 4) if rate is not None else None, "warning": warning})
    return out


def top_rewards(frames: dict[str, pl.DataFrame], n: int = 10) -> list[dict]:
    r = frames["redemptions"].filter(pl.col("status").is_in(["held", "fulfilled"]))
    return (r.group_by("reward", "name").agg(pl.col("quantity").sum().alias("units"), pl.col("points").sum())
            .sort(["units", "reward"], descending=[True, False]).head(n).to_dicts())


def cost_per_point(frames: dict[str, pl.DataFrame]) -> float | None:
    """¥ paid to suppliers per point redeemed in the mall (fulfilled orders)."""
    r = frames["redemptions"].filter(pl.col("status") == "fulfilled")
    points = cast(int, r["points"].sum())  # an integer column's sum (polars types sum() as any number)
    return round(float((r["cost"] * r["quantity"]).sum()) / points, 6) if points else None


def cohorts(frames: dict[str, pl.DataFrame], tz: str) -> list[dict]:
    """Members by month joined; for each later month, the share with at least one event."""
    m = frames["members"].with_columns(pl.col("joined_at").dt.convert_time_zone(tz).dt.strftime("%Y-%m").alias("cohort"))
    ev = frames["events"].with_columns(pl.col("occurred_at").dt.convert_time_zone(tz).dt.strftime("%Y-%m")
                                       .alias("month")).select("member_pk", "month").unique()
    sizes = m.group_by("cohort").agg(pl.len().alias("members"))
    active = (ev.join(m.select("member_pk", "cohort"), on="member_pk").group_by("cohort", "month")
              .agg(pl.len().alias("active")).join(sizes, on="cohort")
              .with_columns((pl.col("active") / pl.col("members")).round(4).alias("retention")))
    return active.sort("cohort", "month").to_dicts()


def cohort_triangle(rows: list[dict], since: str | None = None) -> dict:
    """cohorts() as a retention triangle: the cohorts (months joined, from `since` YYYY-MM on), their sizes,
    and per cohort the share active in months 0, 1, 2 … after joining: 0 for a month that has come with
    nobody active (cohorts() has no row for it), None for one that has not come yet."""
    def index(month: str) -> int:
        year, m = month.split("-")
        return int(year) * 12 + int(m) - 1

    kept = [r for r in rows if since is None or r["cohort"] >= since]
    names = sorted({r["cohort"] for r in kept})
    sizes = {r["cohort"]: r["members"] for r in kept}
    last = max((index(r["month"]) for r in rows), default=0)
    span = max((last - index(c) + 1 for c in names), default=0)
    grid: list[list[float | None]] = [[None] * span for _ in names]
    at = {c: i for i, c in enumerate(names)}
    for c in names:  # a month after joining with nobody active is 0 %, not blank
        for k in range(last - index(c) + 1):
            grid[at[c]][k] = 0.0
    for r in kept:
        offset = index(r["month"]) - index(r["cohort"])
        if offset >= 0:  # (an event dated before joining, e.g. imported history, is not retention)
            grid[at[r["cohort"]]][offset] = r["retention"]
    return {"cohorts": names, "sizes": [sizes[c] for c in names], "offsets": list(range(span)), "retention": grid}


def lifecycle(frames: dict[str, pl.DataFrame], as_of: dt.datetime) -> pl.DataFrame:
    """Per member: registered (no activity yet), active (an event in 30 days), dormant (30–90), churned
    (over 90); churn risk 0–1 grows with days since the last event (0 at 0 days, 1 at 180)."""
    last = frames["events"].filter(pl.col("occurred_at") <= as_of).group_by("member_pk").agg(
        pl.col("occurred_at").max().alias("last"))
    days = (pl.lit(as_of) - pl.col("last")).dt.total_days()
    return (frames["members"].select("member_pk", "member_id").join(last, on="member_pk", how="left")
            .with_columns(days.alias("days_idle"))
            .with_columns(pl.when(pl.col("last").is_null()).then(pl.lit("registered"))
                          .when(pl.col("days_idle") <= 30).then(pl.lit("active"))
                          .when(pl.col("days_idle") <= 90).then(pl.lit("dormant")).otherwise(pl.lit("churned"))
                          .alias("stage"),
                          (pl.col("days_idle").fill_null(180).clip(0, 180) / 180).round(3).alias("churn_risk"))
            .select("member_id", "stage", "days_idle", "churn_risk").sort("member_id"))
