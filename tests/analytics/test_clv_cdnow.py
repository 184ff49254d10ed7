"""CLV as the literature counts it: one purchase per customer and calendar day, and the BG/NBD fit on the
CDNOW sample (tests/analytics/data) against the values Fader, Hardie & Lee (2005) published."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from jifen.analytics import clv, clv_plot
from jifen.analytics.cli import analytics_app

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt"
CALIBRATION_END, HOLDOUT_END = "1997-09-30", "1998-06-30"  # the paper's 39 + 39 weeks


def day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


def test_several_purchases_on_one_day_are_one_transaction():
    # a: 1 Jan (two orders), 8 Jan (three lines), 22 Jan -> purchase days 1, 8, 22: x = 2 repeat purchases.
    # b: one day only, twice -> no repeat purchase. End of calibration: 29 Jan.
    customer = np.array(["a", "a", "a", "a", "a", "a", "b", "b"])
    days = np.array([day(d) for d in ("1997-01-01", "1997-01-01", "1997-01-08", "1997-01-08", "1997-01-08",
                                      "1997-01-22", "1997-01-15", "1997-01-15")])
    amount = np.array([10.0, 5.0, 1.0, 2.0, 3.0, 20.0, 7.0, 8.0])
    ids, s = clv.summarise(customer, days, amount, day("1997-01-29"), unit_days=7.0)
    assert list(ids) == ["a", "b"]
    assert list(s.x) == [2.0, 0.0]  # frequency: repeat purchase days
    assert list(s.t_x) == [3.0, 0.0]  # recency: 21 days after the first, in weeks
    assert list(s.T) == [4.0, 2.0]  # age at the end: 28 and 14 days
    assert list(s.m) == [(6.0 + 20.0) / 2, 0.0]  # mean of the repeat days' totals
    in_days = clv.summarise(customer, days, amount, day("1997-01-29"), unit_days=1.0)[1]
    assert list(in_days.t_x) == [21.0, 0.0] and list(in_days.T) == [28.0, 14.0]
    # A purchase after the end is left out; the holdout counts purchase days after it, per customer.
    later = np.array([day("1997-02-03"), day("1997-02-03"), day("1997-02-10")])
    counts = clv.holdout_counts(ids, np.array(["a", "a", "b"]), later, day("1997-01-29"), day("1997-02-28"))
    assert list(counts) == [1.0, 1.0]
    assert list(clv.holdout_counts(ids, np.array(["z"]), later[:1], day("1997-01-29"), day("1997-02-28"))) == [0, 0]


@pytest.fixture(scope="module")
def cdnow():
    raw = np.loadtxt(CDNOW, dtype=str)
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]").astype(np.int64)
    return raw[:, 0].astype(int), days, raw[:, 4].astype(float)


def test_bgnbd_on_cdnow_matches_the_published_fit(cdnow):
    customer, days, amount = cdnow
    ids, s = clv.summarise(customer, days, amount, day(CALIBRATION_END), unit_days=7.0)
    assert len(ids) == 2357 and s.x.sum() == 2457  # the paper's customers and calibration repeat purchases
    fitted = clv.fit_bgnbd(s)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005), table 1
    for k, v in published.items():
        assert fitted[k] == pytest.approx(v, rel=0.01), (k, fitted[k])


def test_calibration_check_on_cdnow(cdnow, tmp_path):
    customer, days, amount = cdnow
    ids, s = clv.summarise(customer, days, amount, day(CALIBRATION_END))
    p = clv.fit_bgnbd(s)
    actual = clv.holdout_counts(ids, customer, days, day(CALIBRATION_END), day(HOLDOUT_END))
    weeks = (day(HOLDOUT_END) - day(CALIBRATION_END)) / 7
    rows = clv.conditional_expectations(p, s, actual, weeks)
    assert [r["repeat_purchases"] for r in rows] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(r["customers"] for r in rows) == 2357 and rows[0]["customers"] == int((s.x == 0).sum())
    # Group means weighted by group sizes give back the totals.
    assert sum(r["actual"] * r["customers"] for r in rows) == pytest.approx(actual.sum(), abs=1)
    assert sum(r["predicted"] * r["customers"] for r in rows) == pytest.approx(
        clv.expected_purchases(p, s, weeks).sum(), abs=1)
    # More calibration purchases, more expected later: the model's curve rises, as the actual one does.
    predicted = [r["predicted"] for r in rows]
    assert predicted == sorted(predicted) and rows[-1]["actual"] > rows[0]["actual"] * 10
    svg = clv_plot.calibration_svg(rows)
    lines = ET.fromstring(svg).findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 and all(len(pl.get("points").split()) == 8 for pl in lines)


def test_clv_holdout_command(cdnow, tmp_path):
    customer, days, amount = cdnow
    csv = tmp_path / "cdnow.csv"
    csv.write_text("member_id,occurred_at,amount\n" + "".join(
        f"{c},{np.datetime64(int(d), 'D')}T12:00:00,{a}\n" for c, d, a in zip(customer, days, amount, strict=True)),
        encoding="utf-8")
    plot = tmp_path / "check.svg"
    runner = CliRunner()
    done = runner.invoke(analytics_app, ["clv", "--transactions", str(csv), "--calibration-end", CALIBRATION_END,
                                         "--holdout-end", HOLDOUT_END, "--plot", str(plot)])
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01) and len(body["groups"]) == 8
    assert plot.read_text(encoding="utf-8").startswith("<svg")
    table = runner.invoke(analytics_app, ["clv", "--transactions", str(csv), "--calibration-end", CALIBRATION_END,
                                          "--holdout-end", HOLDOUT_END, "--format", "csv"])
    assert table.output.splitlines()[0] == "repeat_purchases,customers,actual,predicted"
    for args, message in ((["--holdout-end", "1997-09-01"], "must be after"), (["--plot", str(plot)], "needs --holdout-end"),
                          (["--holdout-end", "soon"], "is a date")):
        bad = runner.invoke(analytics_app, ["clv", "--transactions", str(csv), "--calibration-end", CALIBRATION_END,
                                            *args])
        assert bad.exit_code == 1 and message in bad.output, bad.output


def eq10(p: dict, s: clv.Summary, horizon: float) -> np.ndarray:
    """Fader, Hardie & Lee's eq. 10 as printed (SciPy's ²F₁): exact while b is moderate."""
    from scipy import special

    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    z = horizon / (alpha + s.T + horizon)
    hyp = special.hyp2f1(r + s.x, b + s.x, a + b + s.x - 1, z)
    first = (a + b + s.x - 1) / (a - 1) * (1 - ((alpha + s.T) / (alpha + s.T + horizon)) ** (r + s.x) * hyp)
    return first / (1 + np.where(s.x > 0, a / (b + s.x - 1) * ((alpha + s.T) / (alpha + s.t_x)) ** (r + s.x), 0))


def test_expected_purchases_stay_exact_when_nobody_drops_out():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 15, 500).astype(float)
    T = rng.uniform(1, 80, 500)
    s = clv.Summary(x=x, t_x=np.where(x > 0, rng.uniform(0, 1, 500) * T, 0), T=T, m=np.zeros(500))
    cdnow = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for horizon in (1.0, 39.0, 365.0):
        assert np.allclose(clv.expected_purchases(cdnow, s, horizon), eq10(cdnow, s, horizon), rtol=1e-8, atol=0)
    # A fit on data where nobody leaves: b in the billions. Eq. 10 as printed loses everything to rounding
    # (negative thousands); the model is then the NBD: (r + x) · t / (α + T) for those with no repeat purchase.
    stays = {"r": 1.338, "alpha": 33.02, "a": 0.0529, "b": 3.5e10}
    got = clv.expected_purchases(stays, s, 30.0)
    assert (eq10(stays, s, 30.0) < 0).any()
    none = s.x == 0
    assert np.allclose(got[none], stays["r"] * 30.0 / (stays["alpha"] + s.T[none]), rtol=1e-9, atol=0)
    assert (got > 0).all() and np.isfinite(got).all()
    # a = 1, where eq. 10 divides by zero, is continuous with its neighbours.
    near = [clv.expected_purchases(cdnow | {"a": a}, s, 39.0) for a in (0.999999, 1.0, 1.000001)]
    assert np.allclose(near[1], near[0], rtol=1e-5) and np.allclose(near[1], near[2], rtol=1e-5)
