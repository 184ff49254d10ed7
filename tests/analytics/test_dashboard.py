"""The dashboard's points by source count each point once: an award when given (not again when it
matures), a redemption when captured (not its hold)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from jifen.analytics.dashboard import by_source

T = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def test_points_by_source_leave_out_reservations_and_maturing():
    old = T - dt.timedelta(days=40)  # before the period: left out
    entries = pl.DataFrame({"type": ["award", "mature", "hold", "capture", "release", "award"],
                            "points": [100, 100, 30, 30, 5, 999],
                            "occurred_at": [T, T + dt.timedelta(days=7), T, T, T, old]},
                           schema_overrides={"occurred_at": pl.Datetime("us", "UTC")})
    awards = pl.DataFrame({"layer": ["base", "tier", "base"], "points": [80, 20, 999],
                           "occurred_at": [T, T, old]},
                          schema_overrides={"occurred_at": pl.Datetime("us", "UTC")})
    got = by_source({"entries": entries, "awards": awards}, T - dt.timedelta(days=30), T + dt.timedelta(days=8))
    assert got == {"entry_type": [{"type": "award", "points": 100}, {"type": "capture", "points": 30}],
                   "rule_layer": [{"layer": "base", "points": 80}, {"layer": "tier", "points": 20}]}
