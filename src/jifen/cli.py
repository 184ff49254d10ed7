"""The `jifen` command."""

from __future__ import annotations

import sys
import threading
import time
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from jifen.analytics.cli import analytics_app, export_app
from jifen.automations.cli import automations_app
from jifen.backup.cli import backup, restore
from jifen.campaigns.cli import campaign_app, experiment_app
from jifen.clikit import Stages, err, fail, out, sessions, took
from jifen.config import get_settings
from jifen.errors import JifenError
from jifen.events.cli import events_app
from jifen.legacy.cli import import_app
from jifen.members.cli import member_app, privacy_app
from jifen.notify.cli import notify_app
from jifen.points.cli import ledger_app
from jifen.programs.cli import program_app, tiers_app
from jifen.recommend.cli import recommend_app
from jifen.risk.cli import risk_app
from jifen.rules.cli import rules_app
from jifen.security.cli import apikey_app, apikey_create, demo_admin, user_app
from jifen.sim.cli import sim

app = typer.Typer(help="Jifen — membership points and loyalty platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
app.add_typer(member_app, name="member")

app.add_typer(program_app, name="program")
app.add_typer(rules_app, name="rules")
app.add_typer(tiers_app, name="tiers")
app.add_typer(events_app, name="events")
app.add_typer(notify_app, name="notify")
app.add_typer(analytics_app, name="analytics")
app.add_typer(export_app, name="export")
app.add_typer(privacy_app, name="privacy")
app.add_typer(risk_app, name="risk")
app.command()(backup)
app.command()(restore)
app.add_typer(import_app, name="import")
app.add_typer(campaign_app, name="campaign")
app.add_typer(experiment_app, name="experiment")
app.add_typer(recommend_app, name="recommend")
app.add_typer(automations_app, name="automations")


@db_app.command("upgrade")
def db_upgrade():
    """Create or migrate every table, and the default programme."""
    from jifen.setup import init_database

    init_database(get_settings().database_url)
    out.print(f"database is at the latest schema: {_safe_url()}")


def _safe_url() -> str:
    try:
        return make_url(get_settings().database_url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return repr(get_settings().database_url)


@app.command()
def demo(members: Annotated[int, typer.Option(min=1, max=200_000, help="members to create")] = 2000,
         days: Annotated[int, typer.Option(min=1, max=730)] = 90,
         seed: Annotated[int, typer.Option(help="random seed")] = 42,
         force: Annotated[bool, typer.Option(help="seed even if members exist")] = False,
         locale: Annotated[str, typer.Option(help="script of the demo's names: zh-Hans or zh-Hant")] = "zh-Hans"):
    """Seed the demo programme (once): members with realistic history, through the ledger."""
    if locale not in ("zh-Hans", "zh-Hant"):
        raise typer.BadParameter("locale is zh-Hans or zh-Hant", param_hint="--locale")
    with Stages() as stages:
        _seed_demo(stages, members, days, seed, force, locale)


def _seed_demo(stages: Stages, members: int, days: int, seed: int, force: bool, locale: str = "zh-Hans") -> None:
    from jifen.demo import demo_present, seed_demo

    factory = sessions()
    with factory() as s:
        if demo_present(s) and not force:
            out.print("demo data already present; nothing to do (use --force to add more)")
            return
    began = time.monotonic()
    report = seed_demo(factory, members=members, days=days, seed=seed, stages=stages, locale=locale)
    out.print(f"demo seeded in {took(time.monotonic() - began)}", highlight=False)
    table = Table(title=f"demo: {report.members} members, {days} days")
    table.add_column("activity")
    table.add_column("count", justify="right")
    for kind, count in sorted(report.entries.items()):
        table.add_row(kind, str(count))
    out.print(table)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          jobs: Annotated[bool, typer.Option(help="run expiry/maturity/hold jobs in-process")] = True,
          workers: Annotated[int, typer.Option(min=1, max=64, help="server processes (Uvicorn workers) sharing the "
                                                                   "port; PostgreSQL for more than one")] = 1):
    """Serve the API (OpenAPI docs at /docs). SIGTERM stops taking requests, answers those in flight (their
    group commits included) and exits."""
    import os
    import tempfile

    import uvicorn

    from jifen.metrics import MULTIPROCESS

    settings = get_settings()
    if workers > 1:
        if settings.database_url.startswith("sqlite"):
            fail("--workers needs PostgreSQL: SQLite has one writer, and one process serves it best")
        # Set before the workers start (they read them as they import): the connections divided among them,
        # and a fresh folder where each writes its metrics for /metrics to add up.
        per_worker = max(4, settings.db_pool_size // workers)
        os.environ["JIFEN_DB_POOL_SIZE"], os.environ["JIFEN_DB_MAX_OVERFLOW"] = str(per_worker), str(per_worker)
        os.environ[MULTIPROCESS] = tempfile.mkdtemp(prefix="jifen-metrics-")
        get_settings.cache_clear()
    from jifen.jobs import loop_forever

    # One worker: the app is built here and the jobs share its engine (on SQLite, its writer lock). Several:
    # each worker builds its own from the factory, and the jobs run in this process only — which then does not
    # import the API at all (on a busy 2-core machine that import alone took 25 s, before the workers' own).
    application = None
    if workers == 1:
        from jifen.api import create_app

        application = create_app()
    stop = threading.Event()
    if jobs:
        jobs_sessions = application.state.sessions if application else sessions()
        threading.Thread(target=loop_forever, args=(jobs_sessions, settings.jobs_interval_seconds, stop),
                         daemon=True).start()
    base = f"http://{host}:{port}"
    out.print(f"Jifen console {base}/console  ·  API {base}/v1  ·  OpenAPI docs {base}/docs"
              + (f"  ·  {workers} workers" if workers > 1 else ""))
    try:
        uvicorn.run(application or "jifen.api:create_app", factory=application is None, host=host, port=port,
                    workers=workers, log_level="info", timeout_graceful_shutdown=30,
                    timeout_worker_healthcheck=60)  # (a worker importing Jifen on a busy machine takes more than 5 s)
    finally:
        stop.set()


@app.command()
def worker(interval: Annotated[float, typer.Option(help="seconds between ledger job runs")] = 60.0):
    """Run the background jobs and the notification dispatcher (for `serve --no-jobs` deployments);
    several workers may run at once."""
    from jifen.jobs import loop_forever

    stop = threading.Event()
    out.print(f"jifen worker: ledger jobs every {interval:g} s, notifications every 2 s (Ctrl-C stops)")
    try:
        loop_forever(sessions(), interval, stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def up(host: str = "127.0.0.1", port: int = 8000, members: int = 2000):
    """First-run convenience: migrate, seed the demo once, print a fresh admin key (and, the first time, the
    console user `admin` with its password), serve."""
    from jifen.setup import init_database

    began = time.monotonic()
    with Stages() as stages:
        stages.start("migrating the database")
        init_database(get_settings().database_url)
        stages.finish(f"at the latest schema: {_safe_url()}")
        _seed_demo(stages, members, 90, 42, False)
    apikey_create(role="admin", name="make-run", program="default")
    demo_admin("default")
    out.print(f"ready in {took(time.monotonic() - began)}; starting the server (Ctrl-C stops it): console "
              f"http://{host}:{port}/console …", highlight=False, soft_wrap=True)
    serve(host=host, port=port, jobs=True)


def main():
    """Entry point: business and database errors end in one readable line and exit code 1."""
    try:
        app()
    except JifenError as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        err.print(f"error: database {_safe_url()}: {reason} (is it reachable, and upgraded with `jifen db upgrade`?)",
                  markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)


app.command("sim")(sim)  # (registered last: listed after the everyday commands)
