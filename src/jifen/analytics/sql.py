"""The core KPIs as plain SQL over the Parquet export — the path to a distributed engine. DuckDB runs it
in-process here; the same statement runs on Spark SQL or Trino over the same files (only the table
functions differ: `read_parquet('dir/entries.parquet')` here, a table registered on the files there)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:
    duckdb = lazy_import("duckdb")

KPI_SQL = """
SELECT
  sum(points) FILTER (WHERE type = 'award')                     AS issued,
  sum(points) FILTER (WHERE type IN ('spend', 'capture'))       AS redeemed,
  coalesce(sum(points) FILTER (WHERE type = 'expire'), 0)       AS expired,
  count(DISTINCT member_pk) FILTER (WHERE type IN ('spend', 'capture')) AS redeemers
FROM read_parquet($entries)
WHERE occurred_at >= $start AND occurred_at < $end
"""


def kpis_sql(directory: Path, start: dt.datetime, end: dt.datetime) -> dict:
    with duckdb.connect() as con:
        row = con.execute(KPI_SQL, {"entries": str(directory / "entries.parquet"), "start": start,
                                    "end": end}).fetchone()
    # (aggregates without GROUP BY: always one row)
    return dict(zip(("issued", "redeemed", "expired", "redeemers"), cast(tuple[Any, ...], row), strict=True))
