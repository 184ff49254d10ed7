"""The dashboard's figures for a period, narrowed to one tier or one channel: KPIs (kpis.py), daily issued
vs redeemed, points by source, tier distribution, top rewards (economy.py), the redemption funnel, and the
rates beside the seeds' healthy ranges. Column-wise over the analytics frames (frames.py); knows no screen.

A tier narrows everything to the members of that tier now. A channel narrows the events and the rules'
awards to that channel, and the ledger and orders to the members who used it in the period (journal entries
carry no channel)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from jifen.analytics import economy, kpis
from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")

# Targets from the seeds (SPEC §9): 消耗率 30–40 % healthy (001); MAU 28–32 % today → 35 % (003);
# redemption rate 3 % today → 8 % (003). (low, high); high None = "at least low".
TARGETS: dict[str, tuple[float, float | None]] = {
    "consumption_rate": economy.HEALTHY_CONSUMPTION,
    "active_rate": (0.35, None),
    "redemption_rate": (0.08, None),
}
PERIODS = (7, 30, 90, 365)  # days the dashboard offers


class BadFilter(ValueError):
    """A filter value the dashboard does not know (the message names it and what is allowed)."""


@dataclass(frozen=True)
class Filters:
    days: int = 30
    tier: str | None = None
    channel: str | None = None


def choices(frames: dict[str, pl.DataFrame]) -> dict[str, list[str]]:
    """The tiers members are in and the channels events came through: what the filters may name."""
    return {"tier": sorted(frames["members"]["tier"].drop_nulls().unique().to_list()),
            "channel": sorted(frames["events"]["channel"].drop_nulls().unique().to_list())}


def check(frames: dict[str, pl.DataFrame], filters: Filters) -> None:
    if filters.days not in PERIODS:
        raise BadFilter(f"days must be one of {', '.join(map(str, PERIODS))} (got {filters.days})")
    known = choices(frames)
    for name in ("tier", "channel"):
        value = getattr(filters, name)
        if value is not None and value not in known[name]:
            raise BadFilter(f"unknown {name} {value!r}: one of {', '.join(known[name]) or '(none yet)'}")


def narrowed(frames: dict[str, pl.DataFrame], filters: Filters, start: dt.datetime,
             end: dt.datetime) -> dict[str, pl.DataFrame]:
    """The frames restricted to the filters' tier and channel (the period is applied by each figure)."""
    out = dict(frames)
    if filters.tier is not None:
        out["members"] = frames["members"].filter(pl.col("tier") == filters.tier)
    if filters.channel is not None:
        on_channel = pl.col("channel") == filters.channel
        out["events"], out["awards"] = frames["events"].filter(on_channel), frames["awards"].filter(on_channel)
        users = out["events"].filter((pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end))["member_pk"]
        out["members"] = out["members"].filter(pl.col("member_pk").is_in(users.unique().implode()))
    if filters.tier is not None or filters.channel is not None:
        keep = pl.col("member_pk").is_in(out["members"]["member_pk"].implode())
        for name in ("events", "entries", "redemptions", "awards"):
            out[name] = out[name].filter(keep)
    return out


def daily(frames: dict[str, pl.DataFrame], start: dt.datetime, end: dt.datetime, tz: str) -> list[dict]:
    """Points issued and redeemed per programme-time day, every day of the period (zero days included)."""
    local = pl.col("occurred_at").dt.convert_time_zone(tz).dt.date().alias("day")
    flows = (frames["entries"].filter((pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end))
             .group_by(local).agg(
                 pl.col("points").filter(pl.col("type") == "award").sum().alias("issued"),
                 pl.col("points").filter(pl.col("type").is_in(["spend", "capture"])).sum().alias("redeemed")))
    first, last = (t.astimezone(ZoneInfo(tz)).date() for t in (start, end - dt.timedelta(microseconds=1)))
    days = pl.DataFrame({"day": pl.date_range(first, last, eager=True)})
    table = days.join(flows, on="day", how="left").fill_null(0).sort("day")
    return [row | {"day": row["day"].isoformat()} for row in table.to_dicts()]


def by_source(frames: dict[str, pl.DataFrame], start: dt.datetime, end: dt.datetime) -> dict[str, list[dict]]:
    """Points by journal entry type, and the points the rules paid by rule layer, in the period."""
    period = (pl.col("occurred_at") >= start) & (pl.col("occurred_at") < end)
    # Holds and releases are reservations (the capture after a hold is the redemption) and maturing moves
    # an award's points from pending to available: none brings points in or takes them out.
    settled = frames["entries"].filter(period & ~pl.col("type").is_in(["hold", "release", "mature"]))
    types = (settled.group_by("type").agg(pl.col("points").sum())
             .sort(["points", "type"], descending=[True, False]))
    layers = (frames["awards"].filter(period).group_by("layer").agg(pl.col("points").sum())
              .sort(["points", "layer"], descending=[True, False]))
    return {"entry_type": types.to_dicts(), "rule_layer": layers.to_dicts()}


def tier_distribution(frames: dict[str, pl.DataFrame]) -> list[dict]:
    return (frames["members"].with_columns(pl.col("tier").fill_null("-")).group_by("tier")
            .agg(pl.len().alias("members")).sort("tier").to_dicts())


def dashboard(frames: dict[str, pl.DataFrame], filters: Filters, now: dt.datetime, tz: str,
              point_value: Decimal) -> dict:
    """Every figure of the dashboard for the `filters.days` days up to `now` (raises BadFilter)."""
    check(frames, filters)
    end, start = now, now - dt.timedelta(days=filters.days)
    data = narrowed(frames, filters, start, end)
    rows = kpis.kpis(data, start, end, point_value)
    row = rows[0] if rows else {}  # (nothing at all in the period)
    orders = data["redemptions"].filter((pl.col("created_at") >= start) & (pl.col("created_at") < end))
    return {
        "start": start, "end": end, "filters": filters, "kpis": row,
        "daily": daily(data, start, end, tz), "source": by_source(data, start, end),
        "tiers": tier_distribution(data), "top_rewards": economy.top_rewards(data | {"redemptions": orders}),
        "funnel": kpis.funnel(data, start, end),
        "rates": [{"rate": name, "value": row.get(name), "low": low, "high": high}
                  for name, (low, high) in TARGETS.items()],
    }
