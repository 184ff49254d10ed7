"""`jifen analytics` and `jifen export`: KPIs, RFM, CLV, Parquet export."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from jifen.analytics import clv_plot
from jifen.clikit import ProgramOpt, fail, out, period, sessions
from jifen.db import utcnow
from jifen.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

analytics_app = typer.Typer(help="Analytics: KPIs, RFM segments, CLV.", no_args_is_help=True)
export_app = typer.Typer(help="Exports for other engines.", no_args_is_help=True)
Format = Annotated[str, typer.Option("--format", help="table, json or csv")]


def _emit(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    elif fmt == "csv":
        if rows:
            writer = csv.DictWriter(sys.stdout, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "table":
        from rich.table import Table

        table = Table()
        for col in (rows[0] if rows else {}):
            table.add_column(col)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        out.print(table)
    else:
        fail(f"--format is table, json or csv, not {fmt!r}")


@analytics_app.command("kpis")
def analytics_kpis(start: Annotated[str, typer.Option("--from")], end: Annotated[str, typer.Option("--to")],
                   by: Annotated[str | None, typer.Option(help="tier or channel")] = None,
                   program: ProgramOpt = "default", fmt: Format = "table"):
    """Points issued / redeemed / expired, consumption and redemption rates, active members … (docs/metrics.md)."""
    from jifen.analytics import frames, kpis
    from jifen.programs.service import get_program

    if by not in (None, "tier", "channel"):
        fail("--by is tier or channel")
    with sessions()() as s:
        prog = get_program(s, program)
        lo, hi = period(prog.timezone, start, end)
        data = frames.load(s, prog)
        rows = kpis.kpis(data, lo, hi, prog.point_value, by)
    _emit(rows, fmt)


@analytics_app.command("rfm")
def analytics_rfm(program: ProgramOpt = "default", fmt: Format = "table",
                  store: Annotated[bool, typer.Option(help="save each member's segment for rules")] = False):
    """RFM scores and seed 001's segments; --store saves them as member.segments for rules."""
    from jifen.analytics import frames, rfm
    from jifen.db import run_in_transaction
    from jifen.members import segments
    from jifen.programs.service import get_program

    with sessions()() as s:
        table = rfm.rfm(frames.load(s, get_program(s, program)), utcnow())
    if store:
        n = run_in_transaction(sessions(), lambda s: segments.store(s, rfm.segment_of(table), rfm.SEGMENT_NAMES))
        out.print(f"segments stored for {n} members")
    summary = table.group_by("segment").len().sort("segment").to_dicts()
    _emit(table.drop("member_pk").to_dicts() if fmt != "table" else summary, fmt)


@analytics_app.command("clv")
def analytics_clv(transactions: Annotated[Path | None, typer.Option(help="CSV: member_id,occurred_at,amount")] = None,
                  calibration_end: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today)")] = None,
                  holdout_end: Annotated[str | None, typer.Option(
                      help="YYYY-MM-DD: check the fit on the purchases after --calibration-end up to this day")] = None,
                  plot: Annotated[Path | None, typer.Option(help="with --holdout-end: write the check as SVG")] = None,
                  time_unit: Annotated[str, typer.Option(help="week or day")] = "week",
                  horizon: Annotated[float, typer.Option(help="units ahead for the prediction")] = 52,
                  program: Annotated[str | None, typer.Option("--program", help="use this programme's purchases")]
                  = None, fmt: Format = "json"):
    """BG/NBD + Gamma-Gamma: fitted parameters and per-member predictions; with --holdout-end, predicted vs
    actual holdout purchases per calibration-frequency group instead (the paper's calibration check)."""
    from jifen.analytics import clv

    if (transactions is None) == (program is None):
        fail("give --transactions FILE.csv or --program CODE")
    unit = {"week": 7.0, "day": 1.0}.get(time_unit)
    if unit is None:
        fail("--time-unit is week or day")
    end, until = _day(calibration_end, "--calibration-end"), _day(holdout_end, "--holdout-end")
    if end is None:
        end = int(np.datetime64(utcnow().date(), "D").astype(int))
    if until is not None and until <= end:
        fail("--holdout-end must be after --calibration-end")
    if plot is not None and until is None:
        fail("--plot needs --holdout-end")
    ids, day, amount = _transactions(transactions, program)
    order_ids, s = clv.summarise(ids, day, amount, end, unit)
    if len(order_ids) < 10:
        fail("at least 10 customers are needed to fit the models")
    p = clv.fit_bgnbd(s)
    if until is not None:
        actual = clv.holdout_counts(order_ids, ids, day, end, until)
        rows = clv.conditional_expectations(p, s, actual, (until - end) / unit)
        if plot is not None:
            plot.write_text(clv_plot.calibration_svg(rows), encoding="utf-8")
        if fmt == "json":
            print(json.dumps({"bgnbd": p, "time_unit": time_unit, "holdout": (until - end) / unit,
                              "groups": rows}, indent=2))
        else:
            _emit(rows, fmt)
        return
    g = clv.fit_gamma_gamma(s)
    rows = clv.member_values(p, g, order_ids, s, horizon)
    if fmt == "json":
        print(json.dumps({"bgnbd": p, "gamma_gamma": g, "time_unit": time_unit, "horizon": horizon,
                          "members": rows}, ensure_ascii=False, indent=2))
    else:
        _emit(rows, fmt)


def _day(text: str | None, option: str) -> int | None:
    """A YYYY-MM-DD option as a day number (days since 1970-01-01)."""
    if text is None:
        return None
    try:
        return int(np.datetime64(dt.date.fromisoformat(text), "D").astype(int))
    except ValueError:
        fail(f"{option} is a date YYYY-MM-DD, not {text!r}")


def _transactions(path: Path | None, program: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(member id, calendar day number, amount) per purchase: the day as written in the file, or the
    programme's calendar day."""
    if path is not None:
        try:
            with path.open(encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            ids = np.array([r["member_id"] for r in rows])
            day = np.array([dt.datetime.fromisoformat(r["occurred_at"]).date() for r in rows],
                           dtype="datetime64[D]").astype(np.int64)
            amount = np.array([float(r["amount"]) for r in rows])
        except (OSError, KeyError, ValueError, TypeError) as exc:
            fail(f"{path}: needs member_id, occurred_at (ISO), amount columns ({exc})")
        return ids, day, amount
    from jifen.analytics import clv, frames
    from jifen.programs.service import get_program

    with sessions()() as s:
        prog = get_program(s, cast(str, program))  # (no CSV file given: then a programme is)
        data = frames.load(s, prog, ("members", "events"), event_types=("purchase",))
    return clv.purchases(data, prog.timezone)


@export_app.command("parquet")
def export_parquet(directory: Path, program: ProgramOpt = "default"):
    """Write members (no personal data), events and journal entries as Parquet files."""
    from jifen.analytics import frames
    from jifen.programs.service import get_program

    with sessions()() as s:
        counts = frames.export(frames.load(s, get_program(s, program)), directory)
    out.print(", ".join(f"{name}: {n:,} rows" for name, n in counts.items()) + f" → {directory}")
