"""One KPI query on two engines: the SQL of `analytics/sql.py` over the same Parquet files, run in-process by
DuckDB and by Spark SQL (PySpark, local mode): the same answer, and the time each takes.

    pip install -e '.[scale]'     (PySpark; Spark needs Java 17: Debian's default-jre-headless)
    .venv/bin/python bench/kpi_engines.py [--entries 10000000] [--no-docs]

The statement is the one Jifen runs (`KPI_SQL`); only the table function differs — `read_parquet('…')` for
DuckDB, a view registered on the same files for Spark — and its parameters are bound by each engine. The
entries are bench/analytics.py's synthetic year of a million members. Spark's start-up (the JVM, the local
session) is timed apart from the query.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from analytics import AS_OF, synthesise
from jifen.analytics.sql import KPI_SQL, kpis_sql
from report import replace_section


def on_spark(directory: Path, start: dt.datetime, end: dt.datetime) -> tuple[dict, float, float]:
    """(the KPIs, seconds to start Spark, seconds for the query)."""
    from pyspark.sql import SparkSession

    began = time.perf_counter()
    spark = (SparkSession.builder.master("local[*]").appName("jifen-kpis")
             .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - began
    try:
        spark.read.parquet(str(directory / "entries.parquet")).createOrReplaceTempView("entries")
        sql = KPI_SQL.replace("read_parquet($entries)", "entries").replace("$start", ":start").replace("$end", ":end")
        began = time.perf_counter()
        row = spark.sql(sql, args={"start": start, "end": end}).collect()[0]
        return row.asDict(), started, time.perf_counter() - began
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    start, end = AS_OF - dt.timedelta(days=30), AS_OF
    with tempfile.TemporaryDirectory(prefix="jifen-kpi-") as tmp:
        directory = Path(tmp)
        synthesise(args.entries, directory)
        began = time.perf_counter()
        duck = kpis_sql(directory, start, end)
        duck_s = time.perf_counter() - began
        spark, spark_start, spark_s = on_spark(directory, start, end)
    same = {k: int(v or 0) for k, v in duck.items()} == {k: int(v or 0) for k, v in spark.items()}
    if not same:
        raise SystemExit(f"the engines disagree: DuckDB {duck}, Spark {spark}")
    table = "\n".join([
        "| engine | query seconds | start-up seconds | issued | redeemed | expired | redeemers |",
        "|---|---|---|---|---|---|---|",
        f"| DuckDB (in-process) | {duck_s:.2f} | — | {duck['issued']:,} | {duck['redeemed']:,} | {duck['expired']:,} "
        f"| {duck['redeemers']:,} |",
        f"| Spark SQL (PySpark, local[*]) | {spark_s:.2f} | {spark_start:.1f} | {spark['issued']:,} | "
        f"{spark['redeemed']:,} | {spark['expired']:,} | {spark['redeemers']:,} |",
    ])
    print(table)
    if not args.no_docs:
        replace_section("One KPI query on DuckDB and Spark", f"`python bench/kpi_engines.py --entries "
                        f"{args.entries}`: `analytics/sql.py`'s KPI statement over the same Parquet file of "
                        f"{args.entries:,} journal entries (30 days of a synthetic year); the same answer from both."
                        f"\n\n{table}\n")


if __name__ == "__main__":
    main()
