"""The console's CLV page: BG/NBD and Gamma-Gamma fitted on a programme's purchases (clv.py, the same fit
as `jifen analytics clv --program`), the members with the highest expected value, and the paper's
calibration check with the last HOLDOUT_DAYS held out — on request, as it fits BG/NBD a second time (the fit is
most of the page's time: 2 s of the demo's ~3 s)."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from jifen.analytics import clv, frames
from jifen.lazy import lazy_import
from jifen.programs.models import Program

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

HORIZONS = (13, 26, 52)  # weeks ahead the page offers
HOLDOUT_DAYS = 28
MIN_CUSTOMERS = 10  # fewer and the fit says nothing (the CLI refuses too)
UNIT = 7.0  # weeks, as the paper


def today_number(now: dt.datetime, tz: str) -> int:
    """The programme's calendar day of `now` as a day number (days since 1970-01-01)."""
    return int(np.datetime64(now.astimezone(ZoneInfo(tz)).date(), "D").astype(int))


def known(row: dict) -> dict:
    """A member's values with NaN as None: Gamma-Gamma has no population mean when q ≤ 1, so members
    without repeat purchases have no expected spend (nor CLV) — shown as unknown, ranked last."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def report(session: Session, program: Program, now: dt.datetime, horizon: int, top: int = 20,
           check: bool = False) -> dict | None:
    """Fitted parameters, the `top` members by CLV over `horizon` weeks, and with `check` the holdout check;
    None when fewer than MIN_CUSTOMERS members have bought."""
    if horizon not in HORIZONS:
        raise ValueError(f"horizon must be one of {', '.join(map(str, HORIZONS))} weeks (got {horizon})")
    data = frames.load(session, program, ("members", "events"), event_types=("purchase",))
    ids, day, amount = clv.purchases(data, program.timezone)
    end = today_number(now, program.timezone)
    order_ids, s = clv.summarise(ids, day, amount, end, UNIT)
    if len(order_ids) < MIN_CUSTOMERS:
        return None
    p, g = clv.fit_bgnbd(s), clv.fit_gamma_gamma(s)
    members = sorted((known(r) for r in clv.member_values(p, g, order_ids, s, horizon)),
                     key=lambda r: (r["clv"] is None, -(r["clv"] or 0), r["member_id"]))
    out = {"bgnbd": p, "gamma_gamma": g, "customers": len(order_ids), "horizon": horizon,
           "members": members[:top], "holdout": None}
    calibration_end = end - HOLDOUT_DAYS
    cal_ids, cal = clv.summarise(ids, day, amount, calibration_end, UNIT)
    if check and len(cal_ids) >= MIN_CUSTOMERS:
        fitted = clv.fit_bgnbd(cal)
        actual = clv.holdout_counts(cal_ids, ids, day, calibration_end, end)
        out["holdout"] = {"days": HOLDOUT_DAYS, "bgnbd": fitted,
                          "groups": clv.conditional_expectations(fitted, cal, actual, HOLDOUT_DAYS / UNIT)}
    return out
