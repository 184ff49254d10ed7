"""The console's analytics pages — RFM segments, CLV, cohort retention, economy health — for roles with the
analytics permission (reports:read, as the analytics API). Each page reads only the tables its figures need
(analytics/: rfm, clv_report, economy.cohorts, health), every visit afresh (no cache to go stale); its
tables export as CSV with the same rows, its charts are Plotly figures (web/analytics_charts.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from jifen.analytics import clv_report, economy, frames, health, rfm
from jifen.analytics.dashboard import TARGETS
from jifen.db import utcnow
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.analytics_charts import clv_figures, cohort_figure, economy_figures, rfm_figures
from jifen.web.console import allowed, page_language, render
from jifen.web.i18n import Translator, translator

router = APIRouter(prefix="/console", include_in_schema=False)
Analyst = Annotated[Principal, allowed("reports:read")]
COHORT_MONTHS = health.MONTHS


class BadFilter(ValueError):
    """A filter value the page does not offer (the message names what it does)."""


@dataclass
class Column:
    key: str
    label: str  # an i18n key
    fmt: str = "num"  # num, float, money, pct, text, mono, or code:<kind>
    args: dict = field(default_factory=dict)  # the label's placeholders


@dataclass
class Table:
    id: str
    title: str  # an i18n key
    columns: list[Column]
    rows: list[dict]


@dataclass
class Page:
    tables: list[Table] = field(default_factory=list)
    charts: dict[str, dict] = field(default_factory=dict)
    cards: list[tuple[str, str]] = field(default_factory=list)  # (i18n key, shown value)
    filter: tuple[str, tuple[int, ...], int] | None = None  # (query parameter, choices, chosen)
    note: str | None = None  # an i18n key
    link: tuple[str, str] | None = None  # (i18n key, href): a further view of the page


def _choice(request: Request, name: str, options: tuple[int, ...], default: int) -> int:
    text = request.query_params.get(name) or str(default)
    if not text.isdigit() or int(text) not in options:
        raise BadFilter(f"{name} must be one of {', '.join(map(str, options))} (got {text!r})")
    return int(text)


def rfm_page(session: Session, program: Program, request: Request, t: Translator) -> Page:
    table = rfm.rfm(frames.load(session, program, ("members", "events"), event_types=("purchase",)), utcnow())
    rows = rfm.segment_summary(table, rfm.points_held(session, program))
    return Page(tables=[Table("segments", "c_segments", [
        Column("segment", "segment", "code:rfm_segment"), Column("members", "ax_members"),
        Column("points", "a_points_held"), Column("spend", "a_spend", "money"),
        Column("recency", "a_recency", "float"), Column("frequency", "a_frequency", "float")], rows)],
        charts=rfm_figures(rows, t), cards=[("a_buyers", t.num(table.height))], note="a_rfm_note")


def clv_page(session: Session, program: Program, request: Request, t: Translator) -> Page:
    horizon = _choice(request, "weeks", clv_report.HORIZONS, 52)
    check = request.query_params.get("check") == "1"
    report = clv_report.report(session, program, utcnow(), horizon, check=check)
    page = Page(filter=("weeks", clv_report.HORIZONS, horizon),
                link=None if check else ("a_run_check", f"/console/analytics/clv?weeks={horizon}&check=1"))
    if report is None:
        page.note = "a_clv_too_few"
        return page
    p, g = report["bgnbd"], report["gamma_gamma"]
    page.cards = [("a_buyers", t.num(report["customers"]))] + [
        (f"a_param_{k}", f"{v:.4g}") for k, v in (p | g).items()]
    page.tables = [Table("members", "c_clv_members", [
        Column("member_id", "members", "mono"), Column("repeat_purchases", "a_repeats"),
        Column("p_alive", "a_p_alive", "pct"), Column("expected_purchases", "a_expected_purchases", "float"),
        Column("expected_spend", "a_expected_spend", "money"), Column("clv", "a_clv", "money")], report["members"])]
    if report["holdout"]:
        page.tables.append(Table("holdout", "a_holdout_table", [
            Column("repeat_purchases", "a_repeat_calibration", "text"), Column("customers", "ax_members"),
            Column("actual", "a_actual", "float"), Column("predicted", "a_predicted", "float")],
            report["holdout"]["groups"]))
    page.charts, page.note = clv_figures(report, t), "a_clv_note"
    return page


def cohorts_page(session: Session, program: Program, request: Request, t: Translator) -> Page:
    months = _choice(request, "months", COHORT_MONTHS, 12)
    start = health.month_starts(utcnow(), program.timezone, months)[0]
    # Members who joined earlier and events before the first cohort's month take no part in its triangle.
    rows = economy.cohorts(frames.load(session, program, ("members", "events"), since=start), program.timezone)
    triangle = economy.cohort_triangle(rows, start.astimezone(ZoneInfo(program.timezone)).strftime("%Y-%m"))
    table = [{"cohort": c, "members": n} | {f"m{k}": v for k, v in enumerate(r)}
             for c, n, r in zip(triangle["cohorts"], triangle["sizes"], triangle["retention"], strict=True)]
    columns = [Column("cohort", "a_cohort", "text"), Column("members", "ax_members")] + [
        Column(f"m{k}", "a_month_n", "pct", {"n": k}) for k in triangle["offsets"]]
    return Page(tables=[Table("cohorts", "c_cohorts", columns, table)], charts=cohort_figure(triangle, t),
                filter=("months", COHORT_MONTHS, months), note="a_cohort_note")


def economy_page(session: Session, program: Program, request: Request, t: Translator) -> Page:
    months = _choice(request, "months", health.MONTHS, 12)
    rows = health.monthly_health(session, program, utcnow(), months)
    targets = {k: TARGETS[k] for k in ("consumption_rate", "active_rate")}
    return Page(tables=[Table("months", "c_economy", [
        Column("month", "a_month", "text"), Column("issued", "earned"), Column("redeemed", "redeemed_p"),
        Column("expired", "a_expired"), Column("consumption_rate", "r_consumption_rate", "pct"),
        Column("active_rate", "r_active_rate", "pct"), Column("outstanding", "outstanding"),
        Column("liability", "a_liability", "money")], rows)],
        charts=economy_figures(rows, targets, t), filter=("months", health.MONTHS, months), note="a_economy_note")


PAGES: dict[str, Callable[[Session, Program, Request, Translator], Page]] = {
    "rfm": rfm_page, "clv": clv_page, "cohorts": cohorts_page, "economy": economy_page}


@router.get("/analytics")
def analytics_home(who: Analyst):
    return RedirectResponse("/console/analytics/rfm", status_code=303)


def _built(request: Request, who: Principal, name: str) -> Page:
    t = translator(page_language(request))
    with request.app.state.read_sessions() as session:
        return PAGES[name](session, session.get(Program, who.program_id), request, t)


@router.get("/analytics/{name}")
def analytics_page(request: Request, name: str, who: Analyst):
    if name not in PAGES:
        return render(request, "analytics.html", status=404, who=who, current=None, pages=PAGES, page=None,
                      missing=f"no analytics page {name!r}: one of {', '.join(PAGES)}", error=None)
    try:
        page = _built(request, who, name)
    except BadFilter as bad:
        return render(request, "analytics.html", status=422, who=who, current=name, pages=PAGES, page=None,
                      error=str(bad))
    return render(request, "analytics.html", who=who, current=name, pages=PAGES, page=page, error=None,
                  q=request.query_params)


@router.get("/analytics/{name}/{table}.csv")
def analytics_csv(request: Request, name: str, table: str, who: Analyst):
    if name not in PAGES:
        return Response(f"no analytics page {name!r}\n", status_code=404, media_type="text/plain; charset=utf-8")
    try:
        page = _built(request, who, name)
    except BadFilter as bad:
        return Response(f"{bad}\n", status_code=422, media_type="text/plain; charset=utf-8")
    found = next((x for x in page.tables if x.id == table), None)
    if found is None:
        return Response(f"no table {table!r} on the {name} page\n", status_code=404,
                        media_type="text/plain; charset=utf-8")
    out = io.StringIO()
    writer = csv.DictWriter(out, [c.key for c in found.columns], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(found.rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}-{table}.csv"'})
