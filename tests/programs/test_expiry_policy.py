"""Expiry policies: rolling months, rounded to a period's end, "clear the oldest year every 31 December",
never; in the programme's timezone."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from jifen.programs.config import Expiry
from jifen.programs.expiry import expiry_for
from tests.support.intake import add_members, configure, send_one

SH = dt.timezone(dt.timedelta(hours=8))


def program(expiry: dict, timezone="Asia/Shanghai"):
    months, rounding = Expiry.model_validate(expiry).columns()
    return SimpleNamespace(expiry_months=months, expiry_round=rounding, timezone=timezone)


@pytest.mark.parametrize("policy, earned, expires", [
    ({"policy": "rolling", "months": 24}, dt.datetime(2026, 3, 31, 10, tzinfo=SH), dt.datetime(2028, 3, 31, 10, tzinfo=SH)),
    ({"policy": "rolling", "months": 1}, dt.datetime(2026, 1, 31, 10, tzinfo=SH), dt.datetime(2026, 2, 28, 10, tzinfo=SH)),
    ({"policy": "rolling", "months": 12, "round": "month"}, dt.datetime(2026, 3, 5, tzinfo=SH),
     dt.datetime(2027, 4, 1, tzinfo=SH)),
    ({"policy": "rolling", "months": 12, "round": "quarter"}, dt.datetime(2026, 5, 5, tzinfo=SH),
     dt.datetime(2027, 7, 1, tzinfo=SH)),
    # Earned in 2026 → cleared as 2027 ends; 1 January 00:30 Shanghai is already 2026 there.
    ({"policy": "year_end", "years": 1}, dt.datetime(2026, 6, 1, tzinfo=SH), dt.datetime(2028, 1, 1, tzinfo=SH)),
    ({"policy": "year_end", "years": 1}, dt.datetime(2025, 12, 31, 16, 30, tzinfo=dt.UTC),
     dt.datetime(2028, 1, 1, tzinfo=SH)),
    ({"policy": "year_end", "years": 1}, dt.datetime(2025, 12, 31, 15, 30, tzinfo=dt.UTC),
     dt.datetime(2027, 1, 1, tzinfo=SH)),
])
def test_expiry_dates(policy, earned, expires):
    assert expiry_for(program(policy), earned.astimezone(dt.UTC)) == expires.astimezone(dt.UTC)


def test_never():
    assert expiry_for(program({"policy": "never"}), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) is None


def test_members_see_the_last_day_they_can_use_their_points(factory, app):
    from fastapi.testclient import TestClient

    from tests.conftest import api_key

    configure(factory, {"pending_days": {}}, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    add_members(factory, "alice")
    earned = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    send_one(factory, "alice", amount=10, order_id="A", at=earned, now=dt.datetime.now(dt.UTC))
    with TestClient(app) as client:
        b = client.get("/v1/members/alice/balance", headers={"Authorization": f"Bearer {api_key(app, 'auditor')}"})
    year = earned.astimezone(SH).year + 1
    assert b.json()["next_expiries"] == [{"date": f"{year}-12-31", "points": 10}]
