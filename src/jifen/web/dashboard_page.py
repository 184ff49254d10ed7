"""The console's first page, the dashboard: wallet figures, KPI cards and Plotly charts for a period, tier
and channel (query parameters, applied server-side), their CSV export, and plotly.min.js served from the
installed `plotly` package (no CDN: the console works on a closed network)."""

from __future__ import annotations

import csv
import io
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy import select

from jifen.analytics import frames
from jifen.analytics.dashboard import PERIODS, BadFilter, Filters, choices, dashboard
from jifen.analytics.overview import overview
from jifen.db import utcnow
from jifen.ledger.models import ChainHead, JournalEntry
from jifen.ledger.views import entry_views
from jifen.programs import tiers
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import SignedIn, allowed, page_language, render
from jifen.web.dashboard_charts import csv_rows, figures
from jifen.web.i18n import translator

router = APIRouter(prefix="/console", include_in_schema=False)
ANALYTICS = "reports:read"  # the dashboard is analytics: the roles the analytics API serves


def _filters(request: Request) -> Filters:
    q = request.query_params
    days = q.get("days") or "30"
    if not days.isdigit():
        raise BadFilter(f"days must be a whole number of days, one of {', '.join(map(str, PERIODS))} (got {days!r})")
    return Filters(days=int(days), tier=q.get("tier") or None, channel=q.get("channel") or None)


def tier_names(program: Program) -> dict[str, str]:
    """Tier code → the name the programme gives it (a code outside the ladder shows as it is)."""
    cfg = tiers.tier_config(program)
    return {level.code: level.name for level in cfg.levels} if cfg else {}


def _dashboard(data: dict, program: Program, request: Request) -> dict:
    """The dashboard for the request's filters (raises BadFilter)."""
    return dashboard(data, _filters(request), utcnow(), program.timezone, program.point_value)


@router.get("")
def home(request: Request, who: SignedIn):
    """The wallets and the latest entries for everyone; the dashboard (the whole programme's analytics,
    the heaviest read of the console) only for roles with the analytics permission."""
    t = translator(page_language(request))
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        head = session.get(ChainHead, program.id)
        latest = entry_views(session, list(session.scalars(
            select(JournalEntry).where(JournalEntry.program_id == program.id)
            .order_by(JournalEntry.id.desc()).limit(15))))
        names = tier_names(program)
        page = {"who": who, "o": overview(session, program), "head": head, "latest": latest,
                "tz": program.timezone, "periods": PERIODS, "q": request.query_params, "tier_names": names,
                "analytics": who.may(ANALYTICS)}
        if not page["analytics"]:
            return render(request, "overview.html", d=None, **page)
        data = frames.load(session, program)
        page["options"] = choices(data)
        try:
            d = _dashboard(data, program, request)
        except BadFilter as bad:
            return render(request, "overview.html", status=422, error=str(bad), d=None, **page)
        return render(request, "overview.html", d=d, charts=figures(d, t, names), **page)


@router.get("/dashboard.csv")
def dashboard_csv(request: Request, who: Annotated[Principal, allowed(ANALYTICS)]):
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        try:
            d = _dashboard(frames.load(session, program), program, request)
        except BadFilter as bad:
            return Response(f"{bad}\n", status_code=422, media_type="text/plain; charset=utf-8")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("figure", "series", "category", "value"))
    writer.writerows(csv_rows(d["kpis"], figures(d, translator(page_language(request)), tier_names(program))))
    name = f"dashboard-{d['end']:%Y%m%d}-{d['filters'].days}d"  # (ASCII: tier names may be Chinese)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@router.get("/vendor/plotly.min.js")
def plotly_js():
    """The plotly.js bundled in the installed `plotly` wheel, cached a day (it changes with the package)."""
    # (located on request: files() imports the plotly package, which the rest of the server never needs)
    return FileResponse(str(files("plotly") / "package_data" / "plotly.min.js"), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
