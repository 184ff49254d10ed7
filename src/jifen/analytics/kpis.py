"""Programme KPIs for a period, column-wise over the journal and events (definitions: docs/metrics.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

LIGHT = ("check_in", "share", "review", "browse", "invite", "register", "profile_complete", "birthday")


def kpis(frames: dict[str, pl.DataFrame], start: dt.datetime, end: dt.datetime, point_value: Decimal,
         by: str | None = None) -> list[dict]:
    """One row for the whole programme, or one per tier / channel with `by`."""
    entries = frames["entries"].join(frames["members"].select("member_pk", "tier"), on="member_pk", how="left")
    events = frames["events"].join(frames["members"].select("member_pk", "tier"), on="member_pk", how="left")
    if by == "channel":  # a ledger entry has no channel: its event's channel comes through the reference
        entries = entries.with_columns(pl.lit(None, pl.Utf8).alias("channel"))
    key = by or "all"
    if by is None:
        entries = entries.with_columns(pl.lit("all").alias("all"))
        events = events.with_columns(pl.lit("all").alias("all"))
    period = (pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end)
    flows = (entries.filter(period).group_by(key).agg(
        pl.col("points").filter(pl.col("type") == "award").sum().alias("issued"),
        pl.col("points").filter(pl.col("type").is_in(["spend", "capture"])).sum().alias("redeemed"),
        pl.col("points").filter(pl.col("type") == "expire").sum().alias("expired"),
        pl.col("member_pk").filter(pl.col("type").is_in(["spend", "capture"])).n_unique().alias("redeemers")))
    acts = (events.filter(period).group_by(key).agg(
        pl.col("member_pk").n_unique().alias("active_members"),
        pl.col("points").filter(pl.col("type") == "purchase").sum().alias("purchase_points"),
        pl.col("points").filter(pl.col("type").is_in(LIGHT)).sum().alias("light_points"),
        pl.col("member_pk").filter(pl.col("type") == "purchase").n_unique().alias("buyers")))
    mau = (events.filter((pl.col("occurred_at") >= end - dt.timedelta(days=30)) & (pl.col("occurred_at") < end))
           .group_by(key).agg(pl.col("member_pk").n_unique().alias("mau")))
    table = flows.join(acts, on=key, how="full", coalesce=True).join(mau, on=key, how="full", coalesce=True).fill_null(0)
    out = []
    for row in table.sort(key).to_dicts():
        issued, redeemed = row["issued"], row["redeemed"]
        earned = row["purchase_points"] + row["light_points"]
        out.append({
            by or "scope": row[key], "issued": issued, "redeemed": redeemed, "expired": row["expired"],
            "consumption_rate": round(redeemed / issued, 4) if issued else None,
            "active_members": row["active_members"], "mau": row["mau"], "redeemers": row["redeemers"],
            "redemption_rate": round(row["redeemers"] / row["active_members"], 4) if row["active_members"] else None,
            "purchase_share": round(row["purchase_points"] / earned, 4) if earned else None,
            "issued_value_yuan": str((Decimal(issued) * point_value).quantize(Decimal("0.01"))),
        })
    return out


def breakage(frames: dict[str, pl.DataFrame]) -> float | None:
    """Share of points that ended unused: expired ÷ (expired + redeemed), over the whole history."""
    e = frames["entries"]
    expired = e.filter(pl.col("type") == "expire")["points"].sum()
    redeemed = e.filter(pl.col("type").is_in(["spend", "capture"]))["points"].sum()
    return round(expired / (expired + redeemed), 4) if expired + redeemed else None


def repeat_purchase(frames: dict[str, pl.DataFrame]) -> dict:
    """Share of buyers with two or more purchases, for members who have used points and those who have not."""
    users = frames["entries"].filter(pl.col("type").is_in(["spend", "capture"]))["member_pk"].unique()
    buys = (frames["events"].filter(pl.col("type") == "purchase").group_by("member_pk").agg(pl.len().alias("n"))
            .with_columns(pl.col("member_pk").is_in(users.implode()).alias("uses_points")))
    out = {}
    for flag, name in ((True, "point_users"), (False, "non_users")):
        part = buys.filter(pl.col("uses_points") == flag)
        out[name] = round(part.filter(pl.col("n") >= 2).height / part.height, 4) if part.height else None
    return out
