"""Programme KPIs for a period, column-wise over the journal and events (definitions: docs/metrics.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")

LIGHT = ("check_in", "share", "review", "browse", "invite", "register", "profile_complete", "birthday")


def kpis(frames: dict[str, pl.DataFrame], start: dt.datetime, end: dt.datetime, point_value: Decimal,
         by: str | None = None) -> list[dict]:
    """One row for the whole programme, or one per tier / channel with `by`."""
    entries = frames["entries"].join(frames["members"].select("member_pk", "tier"), on="member_pk", how="left")
    events = frames["events"].join(frames["members"].select("member_pk", "tier"), on="member_pk", how="left")
    if by == "channel":  # ledger entries have no channel: issued by channel is what rules paid for its events
        entries = (frames["awards"].select("channel", "occurred_at", "points", "member_pk")
                   .with_columns(pl.lit("award").alias("type")))
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
    sizes = dict(frames["members"].group_by(by).len().iter_rows()) if by == "tier" else {}
    out = []
    for row in table.sort(key).to_dicts():
        issued, redeemed = row["issued"], row["redeemed"]
        members = sizes.get(row[key], 0) if by == "tier" else frames["members"].height
        earned = row["purchase_points"] + row["light_points"]
        out.append({
            by or "scope": row[key], "issued": issued, "redeemed": redeemed, "expired": row["expired"],
            "consumption_rate": round(redeemed / issued, 4) if issued else None,
            "active_members": row["active_members"], "active_rate": round(row["active_members"] / members, 4)
            if members else None, "mau": row["mau"], "redeemers": row["redeemers"],
            "redemption_rate": round(row["redeemers"] / row["active_members"], 4) if row["active_members"] else None,
            "purchase_share": round(row["purchase_points"] / earned, 4) if earned else None,
            "issued_value_yuan": str((Decimal(issued) * point_value).quantize(Decimal("0.01"))),
        })
    return out


def breakage(frames: dict[str, pl.DataFrame]) -> float | None:
    """Share of points that ended unused: expired ÷ (expired + redeemed), over the whole history."""
    e = frames["entries"]
    # Integer columns' sums (polars types sum() as any number).
    expired = cast(int, e.filter(pl.col("type") == "expire")["points"].sum())
    redeemed = cast(int, e.filter(pl.col("type").is_in(["spend", "capture"]))["points"].sum())
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


def campaigns(frames: dict[str, pl.DataFrame], start: dt.datetime, end: dt.datetime,
              point_value: Decimal) -> list[dict]:
    """Per campaign-layer rule: points paid, members reached, ¥ of the orders that earned them, and a gross
    ROI = (that spend − the points' cost) ÷ the points' cost (no control group: an upper bound)."""
    a = frames["awards"].filter((pl.col("layer") == "campaign") & (pl.col("occurred_at") >= start)
                                & (pl.col("occurred_at") < end))
    table = a.group_by("rule").agg(pl.col("points").sum(), pl.col("member_pk").n_unique().alias("members"),
                                   pl.col("amount").fill_null(0).sum().alias("spend")).sort("rule")
    out = []
    for row in table.to_dicts():
        cost = float(Decimal(row["points"]) * point_value)
        out.append(row | {"spend": round(row["spend"], 2), "cost_yuan": round(cost, 2),
                          "gross_roi": round((row["spend"] - cost) / cost, 2) if cost else None})
    return out


def funnel(frames: dict[str, pl.DataFrame], start: dt.datetime, end: dt.datetime) -> dict:
    """Members who earned points in the period → placed a redemption order → had one fulfilled."""
    period = (pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end)
    earned = frames["entries"].filter(period & (pl.col("type") == "award"))["member_pk"].n_unique()
    orders = frames["redemptions"].filter((pl.col("created_at") >= start) & (pl.col("created_at") < end))
    ordered = orders["member_pk"].n_unique()
    fulfilled = orders.filter(pl.col("status") == "fulfilled")["member_pk"].n_unique()
    return {"earned": earned, "ordered": ordered, "fulfilled": fulfilled,
            "order_rate": round(ordered / earned, 4) if earned else None,
            "fulfil_rate": round(fulfilled / ordered, 4) if ordered else None}
