"""A campaign judged: what it cost (points given, or — double-value redemption days — points its offer saved
members in the mall; ¥ liability, the sponsor's share), whom it reached, and what it changed — purchases
and spend per member of the reached group against the holdout, with 95% confidence intervals
(analytics/stats.py) — and its ROI. The co-funding settlement lists what each sponsor owes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from jifen.analytics.stats import Comparison, compare_means
from jifen.campaigns import measure
from jifen.campaigns.models import Campaign
from jifen.campaigns.service import audience, rule_code, view
from jifen.events.models import Event
from jifen.lazy import lazy_import
from jifen.mall.models import Redemption
from jifen.programs.models import Program
from jifen.rules import budgets

if TYPE_CHECKING:
    import polars as pl
else:
    pl = lazy_import("polars")


def awards(session: Session, program: Program, rules: list[str], start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """One row per event a campaign rule paid in [start, end): member_pk, rule, points, sponsor, sponsored."""
    like = [cast(Event.result, Text).like(f'%"{r}"%') for r in rules]
    q = select(Event.member_pk, cast(Event.result, Text)).where(
        Event.program_id == program.id, Event.occurred_at >= start, Event.occurred_at < end, Event.points > 0)
    rows = session.execute(q.where(or_(*like))).all()
    frame = pl.DataFrame(rows, schema={"member_pk": pl.Int64, "result": pl.Utf8}, orient="row")
    lines = pl.Struct({"rules": pl.List(pl.Struct({"rule": pl.Utf8, "points": pl.Int64, "sponsor": pl.Utf8,
                                                    "sponsored": pl.Int64}))})
    return (frame.with_columns(pl.col("result").str.json_decode(lines).struct.field("rules").alias("rules"))
            .drop("result").explode("rules").unnest("rules").filter(pl.col("rule").is_in(rules))
            .with_columns(pl.col("sponsored").fill_null(0)))


def discounts(session: Session, program: Program, codes: list[str], start: dt.datetime,
              end: dt.datetime) -> pl.DataFrame:
    """One row per order a campaign's double-value days priced in [start, end), not cancelled or refunded
    (those gave their saving back): member_pk, campaign, points (saved), sponsored."""
    rows = session.execute(select(Redemption.member_pk, Redemption.campaign, Redemption.points_saved,
                                  Redemption.sponsored).where(
        Redemption.program_id == program.id, Redemption.campaign.in_(codes), Redemption.created_at >= start,
        Redemption.created_at < end, Redemption.status.not_in(("cancelled", "refunded")))).all()
    return pl.DataFrame(rows, schema={"member_pk": pl.Int64, "campaign": pl.Utf8, "points": pl.Int64,
                                      "sponsored": pl.Int64}, orient="row")


def _scaled(c: Comparison, n: int) -> dict:
    """A per-member difference as a total over the n members reached."""
    return {"per_member": c.view(), "total": round(c.difference * n, 2), "low": round(c.low * n, 2),
            "high": round(c.high * n, 2)}


def report(session: Session, program: Program, c: Campaign, now: dt.datetime) -> dict:
    start, end = c.starts_at, min(c.ends_at, max(now, c.starts_at))
    paid = awards(session, program, [rule_code(c)], start, end)
    saved = discounts(session, program, [c.code], start, end)
    points = int(paid["points"].sum() or 0) + int(saved["points"].sum() or 0)
    sponsored = int(paid["sponsored"].sum() or 0) + int(saved["sponsored"].sum() or 0)
    value = program.point_value
    used = budgets.used(session, program.id, rule_code(c))
    aud = audience(c)
    groups = measure.population(session, program, lambda mid, tier, attrs: _in_study(aud.group(mid, tier, attrs)))
    measured = measure.behaviour(session, program, groups, start, end)
    treated, held = (measured.filter(pl.col("group") == g) for g in ("treated", "holdout"))
    counts = {"treated": treated.height, "holdout": held.height}
    incremental: dict = {"purchases": None, "spend": None}
    roi: dict = {"value": None, "low": None, "high": None}
    net_cost = float((points - sponsored) * value)
    if treated.height >= 2 and held.height >= 2:
        buys = compare_means(treated["purchases"].to_list(), held["purchases"].to_list())
        spend = compare_means(treated["spend"].to_list(), held["spend"].to_list())
        incremental = {"purchases": _scaled(buys, treated.height), "spend": _scaled(spend, treated.height)}
        if net_cost > 0:  # (incremental spend − what the brand paid) ÷ what the brand paid
            roi = {k: round((incremental["spend"][b] - net_cost) / net_cost, 2)
                   for k, b in (("value", "total"), ("low", "low"), ("high", "high"))}
    return {"campaign": view(c), "period": {"from": start.isoformat(), "to": end.isoformat()},
            "cost": {"points": points, "liability_yuan": str(_yuan(points, value)), "sponsor": c.sponsor,
                     "sponsored_points": sponsored, "sponsored_yuan": str(_yuan(sponsored, value)),
                     "brand_points": points - sponsored, "brand_yuan": str(_yuan(points - sponsored, value)),
                     "discounted_orders": saved.height, "points_saved": int(saved["points"].sum() or 0)},
            "budget": {"points": c.budget, "used": int(used), "left": max(0, c.budget - int(used))},
            "participants": pl.concat([paid["member_pk"], saved["member_pk"]]).n_unique(), "groups": counts,
            "incremental": incremental, "roi": roi}


def _in_study(group: str) -> str | None:
    return group if group in ("treated", "holdout") else None


def _yuan(points: int, value: Decimal) -> Decimal:
    return (Decimal(points) * value).quantize(Decimal("0.01"))


def co_funding(session: Session, program: Program, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Settlement of co-funded campaign points: per sponsor and campaign, the points the sponsor's share
    covers and what it owes in ¥ (at the programme's point value), for events in [start, end) — and for
    double-value redemption days, of the points saved on orders placed in [start, end) and not cancelled
    or refunded."""
    campaigns = {rule_code(c): c for c in session.scalars(select(Campaign).where(
        Campaign.program_id == program.id, Campaign.sponsor.is_not(None)))}
    if not campaigns:
        return []
    paid = awards(session, program, sorted(campaigns), start, end).filter(pl.col("sponsored") > 0)
    saved = discounts(session, program, [c.code for c in campaigns.values()], start, end).filter(
        pl.col("sponsored") > 0).with_columns(
        rule=pl.col("campaign").map_elements(budgets.of_campaign, return_dtype=pl.Utf8),
        sponsor=pl.col("campaign").replace_strict({c.code: c.sponsor for c in campaigns.values()}, return_dtype=pl.Utf8))
    both = pl.concat([paid.select("sponsor", "rule", "points", "sponsored"),
                      saved.select("sponsor", "rule", "points", "sponsored")])
    table = both.group_by("sponsor", "rule").agg(pl.col("points").sum(), pl.col("sponsored").sum()).sort("sponsor", "rule")
    return [{"sponsor": row["sponsor"], "campaign": campaigns[row["rule"]].code, "points": row["points"],
             "sponsored_points": row["sponsored"], "owed_yuan": str(_yuan(row["sponsored"], program.point_value))}
            for row in table.to_dicts()]
