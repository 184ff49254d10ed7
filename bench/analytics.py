"""KPIs + RFM over 10 million journal entries (and 4 million purchase events): Jifen's Polars code
beside a plain pandas implementation of the same computations, each in its own process, time and peak
memory, in the same run.

    .venv/bin/python bench/analytics.py [--entries 10000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

MEMBERS = 1_000_000
AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def synthesise(entries: int, directory: Path) -> None:
    rng = np.random.default_rng(1)
    start = int(dt.datetime(2025, 11, 1, tzinfo=dt.UTC).timestamp() * 1e6)
    span = int(365 * 86400 * 1e6)
    types = rng.choice(np.array(["award", "spend", "capture", "expire", "mature"]), entries, p=[.5, .15, .1, .05, .2])
    pl.DataFrame({
        "entry_id": np.arange(entries), "type": types, "member_pk": rng.integers(1, MEMBERS, entries),
        "points": rng.integers(1, 500, entries), "occurred_at": start + rng.integers(0, span, entries),
        "reference": None, "reverses": None,
    }).with_columns(pl.col("occurred_at").cast(pl.Datetime("us", "UTC")), pl.col("reference").cast(pl.Utf8),
                    pl.col("reverses").cast(pl.Int64)).write_parquet(directory / "entries.parquet")
    n = entries * 2 // 5
    pl.DataFrame({
        "member_pk": rng.integers(1, MEMBERS, n), "type": rng.choice(np.array(["purchase", "check_in"]), n, p=[.8, .2]),
        "channel": "app", "occurred_at": start + rng.integers(0, span, n), "amount": rng.uniform(1, 500, n).round(2),
        "refunded": 0.0, "points": rng.integers(1, 500, n), "points_reversed": 0,
    }).with_columns(pl.col("occurred_at").cast(pl.Datetime("us", "UTC"))).write_parquet(directory / "events.parquet")
    pl.DataFrame({"member_pk": np.arange(1, MEMBERS), "member_id": [f"M{i}" for i in range(1, MEMBERS)],
                  "tier": "normal", "joined_at": start}).with_columns(
        pl.col("joined_at").cast(pl.Datetime("us", "UTC"))).write_parquet(directory / "members.parquet")


def run_jifen(directory: Path) -> dict:
    from jifen.analytics import kpis, rfm

    frames = {n: pl.read_parquet(directory / f"{n}.parquet") for n in ("members", "events", "entries")}
    t0 = time.perf_counter()
    rows = kpis.kpis(frames, AS_OF - dt.timedelta(days=30), AS_OF, Decimal("0.01"))
    table = rfm.rfm(frames, AS_OF)
    return {"seconds": time.perf_counter() - t0, "issued": rows[0]["issued"], "rfm_rows": table.height,
            "segments": table["segment"].value_counts().height}


def run_pandas(directory: Path) -> dict:
    import pandas as pd

    def read(name: str) -> pd.DataFrame:  # (numpy arrays in: pandas reads Parquet only with pyarrow)
        frame = pl.read_parquet(directory / f"{name}.parquet")
        frame = frame.with_columns(pl.col(pl.Datetime("us", "UTC")).dt.replace_time_zone(None))
        return pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns})

    entries, events = read("entries"), read("events")
    t0 = time.perf_counter()
    start = pd.Timestamp(AS_OF.replace(tzinfo=None) - dt.timedelta(days=30))
    end = pd.Timestamp(AS_OF.replace(tzinfo=None))
    e = entries[(entries.occurred_at >= start) & (entries.occurred_at < end)]
    issued = int(e.loc[e.type == "award", "points"].sum())
    e.loc[e.type.isin(["spend", "capture"]), "points"].sum()
    e.loc[e.type == "expire", "points"].sum()
    e.loc[e.type.isin(["spend", "capture"]), "member_pk"].nunique()
    ev = events[(events.occurred_at >= start) & (events.occurred_at < end)]
    ev.member_pk.nunique()
    buys = events[(events.type == "purchase") & (events.occurred_at <= end)]
    last = buys.groupby("member_pk").occurred_at.max()
    window = buys[buys.occurred_at > end - pd.Timedelta(days=365)]
    freq = window.groupby("member_pk").size()
    money = (window.amount - window.refunded).groupby(window.member_pk).sum()
    table = pd.DataFrame({"last": last}).join(freq.rename("frequency")).join(money.rename("monetary")).fillna(0)
    table["recency"] = (end - table["last"]).dt.days
    for col, sign in (("recency", -1), ("frequency", 1), ("monetary", 1)):
        table[col[0]] = np.clip(np.ceil((sign * table[col]).rank() / len(table) * 5), 1, 5)

    def segment(row):  # row by row, as a first pandas version usually is
        if row.recency >= 90:
            return "休眠"
        if row.recency >= 60:
            return "流失預警"
        if row.recency <= 7 and row.frequency >= 3:
            return "高價值"
        if row.recency <= 30 and 1 <= row.frequency <= 2:
            return "中價值"
        return "低頻" if row.frequency <= 1 else "一般"

    table["segment"] = table.apply(segment, axis=1)
    return {"seconds": time.perf_counter() - t0, "issued": issued, "rfm_rows": len(table),
            "segments": table.segment.nunique()}


def child(which: str, directory: str) -> None:
    result = (run_jifen if which == "jifen" else run_pandas)(Path(directory))
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        synthesise(args.entries, Path(tmp))
        made = time.perf_counter() - t0
        results = {}
        for which in ("jifen", "pandas"):
            out = subprocess.run([sys.executable, __file__, "--child", which, tmp], capture_output=True, text=True,
                                 check=True).stdout
            results[which] = json.loads(out.strip().splitlines()[-1])
    assert results["jifen"]["issued"] == results["pandas"]["issued"]
    assert results["jifen"]["rfm_rows"] == results["pandas"]["rfm_rows"]
    print(f"{args.entries:,} journal entries, {args.entries * 2 // 5:,} events, {MEMBERS:,} members "
          f"(synthesised in {made:.1f} s)\n")
    print("| implementation | KPIs + RFM seconds | peak memory MiB |")
    print("|---|---|---|")
    for name, label in (("jifen", "Jifen (Polars, column-wise)"), ("pandas", "pandas, straightforward (baseline)")):
        print(f"| {label} | {results[name]['seconds']:.2f} | {results[name]['peak_mib']:,.0f} |")


if __name__ == "__main__":
    main()
