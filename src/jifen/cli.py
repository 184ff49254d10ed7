"""The `jifen` command."""

from __future__ import annotations

import sys
import threading
import time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from jifen.analytics.cli import analytics_app, export_app
from jifen.clikit import ProgramOpt, err, fail, out, sessions
from jifen.config import get_settings
from jifen.db import run_in_transaction, utcnow
from jifen.errors import JifenError
from jifen.events.cli import events_app
from jifen.members.cli import add_member_commands, privacy_app
from jifen.notify.cli import notify_app
from jifen.programs.cli import program_app, tiers_app
from jifen.risk.cli import risk_app
from jifen.rules.cli import rules_app
from jifen.security.cli import demo_admin, user_app

app = typer.Typer(help="Jifen — membership points and loyalty platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="Ledger checks and jobs.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
member_app = typer.Typer(help="Members.", no_args_is_help=True)
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
add_member_commands(member_app)  # member export, member erase
app.add_typer(risk_app, name="risk")


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


def _took(seconds: float) -> str:
    whole = round(seconds)
    return f"{seconds:.1f} s" if seconds < 59.5 else f"{whole // 60} min {whole % 60:02d} s"


class Stages:
    """The long steps of `jifen demo` and `jifen up`, as they happen: a line as a step starts and one as it ends,
    with its time. In between, on a terminal, a live bar with what is done so far; otherwise (piped, CI) a line
    at about every 10 %."""

    def __init__(self, console=out):
        self.console = console
        self.bar: Progress | None = None
        if console.is_terminal and not console.is_dumb_terminal:
            self.bar = Progress(SpinnerColumn(), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                                     ratio=1)),
                                console=console, transient=True, expand=True)

    def __enter__(self) -> Stages:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.stop()

    def _line(self, text: str) -> None:
        if self.bar:
            self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.console.file, flush=True)  # as it happens, even when stdout is a pipe

    def start(self, title: str, total: int | None = None) -> None:
        self.total, self.began, self.next = total, time.monotonic(), 10
        self.said = self.began
        self._line(f"{title} …")
        if self.bar:
            self.task = self.bar.add_task("", total=total)
            self.bar.refresh()

    def update(self, done: int, detail: str = "") -> None:
        if self.bar:
            self.bar.update(self.task, completed=done, description=detail)
        elif self.total and done * 100 >= self.next * self.total:
            pct = done * 100 // self.total
            self.next = pct // 10 * 10 + 10
            if time.monotonic() - self.said >= 1 and done < self.total:  # a quick step just starts and ends
                self._line(f"  {pct:3d}%  {done:,}/{self.total:,}" + (f"  {detail}" if detail else ""))
                self.said = time.monotonic()

    def finish(self, summary: str = "") -> None:
        if self.bar:
            self.bar.remove_task(self.task)
            self.bar.refresh()
        self._line(f"  done in {_took(time.monotonic() - self.began)}" + (f": {summary}" if summary else ""))


@app.command()
def demo(members: Annotated[int, typer.Option(min=1, max=200_000, help="members to create")] = 2000,
         days: Annotated[int, typer.Option(min=1, max=730)] = 90,
         seed: Annotated[int, typer.Option(help="random seed")] = 42,
         force: Annotated[bool, typer.Option(help="seed even if members exist")] = False):
    """Seed the demo programme (once): members with realistic history, through the ledger."""
    with Stages() as stages:
        _seed_demo(stages, members, days, seed, force)


def _seed_demo(stages: Stages, members: int, days: int, seed: int, force: bool) -> None:
    from jifen.demo import demo_present, seed_demo

    factory = sessions()
    with factory() as s:
        if demo_present(s) and not force:
            out.print("demo data already present; nothing to do (use --force to add more)")
            return
    began = time.monotonic()
    report = seed_demo(factory, members=members, days=days, seed=seed, stages=stages)
    out.print(f"demo seeded in {_took(time.monotonic() - began)}", highlight=False)
    table = Table(title=f"demo: {report.members} members, {days} days")
    table.add_column("activity")
    table.add_column("count", justify="right")
    for kind, count in sorted(report.entries.items()):
        table.add_row(kind, str(count))
    out.print(table)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000,
          jobs: Annotated[bool, typer.Option(help="run expiry/maturity/hold jobs in-process")] = True):
    """Serve the API (OpenAPI docs at /docs)."""
    import uvicorn

    from jifen.api import create_app
    from jifen.jobs import loop_forever

    application = create_app()
    stop = threading.Event()
    if jobs:
        interval = get_settings().jobs_interval_seconds
        threading.Thread(target=loop_forever, args=(application.state.sessions, interval, stop), daemon=True).start()
    base = f"http://{host}:{port}"
    out.print(f"Jifen console {base}/console  ·  API {base}/v1  ·  OpenAPI docs {base}/docs")
    try:
        uvicorn.run(application, host=host, port=port, log_level="info")
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
    out.print(f"ready in {_took(time.monotonic() - began)}; starting the server (Ctrl-C stops it): console "
              f"http://{host}:{port}/console …", highlight=False, soft_wrap=True)
    serve(host=host, port=port, jobs=True)


@apikey_app.command("create")
def apikey_create(role: Annotated[str, typer.Option(help="admin, operator, customer_service, auditor, finance, pos")],
                  name: Annotated[str, typer.Option(help="who or what uses the key")] = "cli",
                  program: ProgramOpt = "default"):
    """Create an API key; the secret is printed once and never stored."""
    from jifen.programs.service import get_program
    from jifen.security.service import create_api_key

    def work(s):
        key, secret = create_api_key(s, get_program(s, program), role, name)
        return key.id, secret

    key_id, secret = run_in_transaction(sessions(), work)
    out.print(f"API key #{key_id} ({role}, {name}) — shown once, keep it safe:")
    print(secret)


@apikey_app.command("revoke")
def apikey_revoke(key_id: int):
    """Revoke an API key."""
    from jifen.security.service import revoke_api_key

    if not run_in_transaction(sessions(), lambda s: revoke_api_key(s, key_id)):
        fail(f"no active API key #{key_id}")
    out.print(f"API key #{key_id} revoked")


@ledger_app.command("verify")
def ledger_verify(expect_head: Annotated[str | None, typer.Option(
        help="chain-head hash published earlier; also proves nothing was rewritten wholesale")] = None,
                  program: ProgramOpt = "default"):
    """Check every ledger invariant; exit 1 naming the first broken entry."""
    from jifen.ledger.models import ChainHead, JournalEntry
    from jifen.ledger.verify import Problem, verify
    from jifen.programs.service import get_program

    with sessions()() as s:
        total = s.scalar(select(func.count()).select_from(JournalEntry))
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("verifying hash chain", total=total)
            problems: list[Problem | str] = list(verify(s, progress=lambda n: bar.advance(task, n)))
        if expect_head:
            head = s.get(ChainHead, get_program(s, program).id)
            if not head or not head.hash.startswith(expect_head):
                problems.append(f"[chain] head of {program!r} is {head and head.hash}, not {expect_head}")
    if problems:
        for p in problems[1:20]:
            err.print(f"  also: {p}", markup=False, highlight=False)
        fail(f"ledger broken at {problems[0]}")
    out.print(f"ledger OK: {total} entries; postings balance, balances = postings = lots, hash chain intact")


@ledger_app.command("audit")
def ledger_audit():
    """Verify the audit log's hash chain (every write by an API key or console session)."""
    from jifen.security.audit import AuditEntry, verify

    with sessions()() as s:
        problems = verify(s)
        lines = s.scalar(select(func.count()).select_from(AuditEntry))
    if problems:
        fail(f"audit log broken: {problems[0]}")
    out.print(f"audit log OK: {lines} lines, hash chain intact")


@member_app.command("rotate-keys")
def member_rotate_keys():
    """Re-encrypt all personal data (members, delivery addresses, stored responses) with the first key of
    JIFEN_DATA_KEYS (after a rotation)."""
    import jifen.models  # noqa: F401 - every mapped table, for the ORM's relationships
    from jifen.members.privacy import rotate_keys

    counts = run_in_transaction(sessions(), rotate_keys)
    out.print("personal data re-encrypted: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@ledger_app.command("head")
def ledger_head(program: ProgramOpt = "default"):
    """Print the chain head (seq and hash) to publish for later `verify --expect-head`."""
    from jifen.ledger.models import ChainHead
    from jifen.programs.service import get_program

    with sessions()() as s:
        head = s.get(ChainHead, get_program(s, program).id)
        out.print(f"{program} seq={head.seq} hash={head.hash}")


@ledger_app.command("jobs")
def ledger_jobs():
    """Run the background jobs now: stale holds, pending points, expiry, tier evaluations due."""
    from jifen.jobs import run_all

    report = run_all(sessions())
    out.print(f"holds released: {report.holds_released}; members settled: {report.members}; "
              f"entries written: {report.entries}; tier evaluations: {report.tier_evaluations}; "
              f"expiry reminders: {report.reminders}; notifications delivered: {report.notifications}")


@member_app.command("show")
def member_show(member_id: str, program: ProgramOpt = "default",
                limit: Annotated[int, typer.Option(min=1, max=1000, help="ledger entries to show")] = 10):
    """A member's balances, next expiries and latest entries."""
    from jifen.ledger.models import JournalEntry, Posting
    from jifen.ledger.views import balance_view
    from jifen.members.service import get_member
    from jifen.programs.models import Wallet
    from jifen.programs.service import get_program

    with sessions()() as s:
        prog = get_program(s, program)
        m = get_member(s, prog, member_id)
        out.print(f"[bold]{m.member_id}[/] {m.name or ''}  joined {m.joined_at:%Y-%m-%d}  programme {prog.code}")
        for wallet in s.scalars(select(Wallet).where(Wallet.program_id == prog.id).order_by(Wallet.id)):
            b = balance_view(s, prog, wallet, m, utcnow())
            out.print(f"  {wallet.code}: available {b['available']} (≈ ¥{b['value_cny']}), pending {b['pending']}, "
                      f"held {b['held']}, frozen {b['frozen']}, debt {b['debt']}")
            for e in b["next_expiries"]:
                out.print(f"    expires {e['date']}: {e['points']}")
        tz = ZoneInfo(prog.timezone)
        table = Table(title=f"latest entries ({prog.timezone})")
        for col in ("entry", "type", "points", "occurred", "reference / reason"):
            table.add_column(col)
        entry_ids = select(Posting.entry_id).where(Posting.member_pk == m.id)
        for e in s.scalars(select(JournalEntry).where(JournalEntry.id.in_(entry_ids))
                           .order_by(JournalEntry.id.desc()).limit(limit)):
            table.add_row(str(e.id), e.type, str(e.points), f"{e.occurred_at.astimezone(tz):%Y-%m-%d %H:%M}",
                          " / ".join(x for x in (e.reference, e.reason) if x))
        out.print(table)


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
