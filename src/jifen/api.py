"""The FastAPI application: routers, and errors as {"error": {"code", "message"}}."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import DataError, OperationalError, StatementError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from jifen import __version__
from jifen.analytics.api import router as analytics_router
from jifen.automations.api import router as automations_router
from jifen.campaigns.api import router as campaigns_router
from jifen.config import get_settings
from jifen.db import make_engine, make_lookup_sessionmaker, make_read_sessionmaker, make_sessionmaker, run_in_transaction
from jifen.engagement.api import router as engagement_router
from jifen.errors import JifenError
from jifen.events.api import router as events_router
from jifen.flows.group_commit import ALONE, GroupCommit
from jifen.flows.redeem import commit_redemptions
from jifen.mall.api import router as mall_router
from jifen.members.api import router as members_router
from jifen.metrics import RequestTimer, scrape
from jifen.migrate import schema_revisions
from jifen.notify.api import router as notify_router
from jifen.openapi import api_routes, errors
from jifen.openapi import install as install_openapi
from jifen.points.api import router as points_router
from jifen.recommend.api import router as recommend_router
from jifen.risk import cases as risk_cases
from jifen.risk.api import router as risk_router
from jifen.risk.scoring import RiskBlocked
from jifen.rules.api import router as rules_router
from jifen.security import audit, changes
from jifen.security.service import KnownKeys
from jifen.unique_names import UniqueNames
from jifen.web import console
from jifen.web.analytics_pages import router as analytics_pages_router
from jifen.web.apikeys_page import router as apikeys_page_router
from jifen.web.approvals_page import router as approvals_page_router
from jifen.web.audit_page import router as audit_page_router
from jifen.web.automations_page import router as automations_page_router
from jifen.web.campaigns_page import router as campaigns_page_router
from jifen.web.console import router as console_router
from jifen.web.coupons_page import router as coupons_page_router
from jifen.web.dashboard_page import router as dashboard_router
from jifen.web.engagement_page import router as engagement_page_router
from jifen.web.mall_page import router as mall_page_router
from jifen.web.member_actions import router as member_actions_router
from jifen.web.member_centre import Problem, problem_page
from jifen.web.member_centre import router as member_centre_router
from jifen.web.member_engage import router as member_engage_router
from jifen.web.member_mall import router as member_mall_router
from jifen.web.notifications_page import router as notifications_page_router
from jifen.web.public import router as public_router
from jifen.web.risk_page import router as risk_page_router
from jifen.web.rules_editor import router as rules_editor_router
from jifen.web.signin import router as signin_router
from jifen.web.simulation_runs import SimulationRuns
from jifen.web.users_page import router as users_page_router
from jifen.web.webhooks_page import router as webhooks_page_router


def error(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


# The largest body a client needs is a batch of 1,000 events (POST /v1/events/batch): about 1 MiB as sent by
# tills and apps, and 16 MiB leaves room for every event to carry attributes at their 16 KiB bound
# (jifen/freejson.py). A larger body is refused before it is parsed (parsed, it takes several times its size).
MAX_BODY = 16 * 1024 * 1024


class BodyLimit:
    """413 `body_too_large` for a body over `limit` bytes: at once when its Content-Length says so, else
    (chunked, or a Content-Length that lies) as soon as the chunks received pass the limit."""

    def __init__(self, app, limit: int):
        self.app, self.limit, self.message = app, limit, f"request body larger than {limit} bytes"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            return await error(413, "body_too_large", self.message)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # the route reading the body fails with it; _http answers
                raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted, send)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str, list]:
    details = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"),
                "message": e["msg"].removeprefix("Value error, ")}
               for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return 400, "malformed_json", "request body is not valid JSON", details
    if any(e["loc"] == ("body",) and isinstance(e.get("input"), bytes) for e in exc.errors()):
        # FastAPI parses a body as JSON only when its Content-Type says so; any other is handed over as bytes.
        return 400, "malformed_json", "request body is not JSON (send it as Content-Type: application/json)", details
    first = details[0]
    where = f"{first['field']}: " if first["field"] else ""
    return 422, "invalid_request", f"{where}{first['message']}", details


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The group commits' workers (events, redemptions, audit lines) live as long as the app serves (an app never started,
    # as in a test without its client's `with`, runs each request alone).
    kinds = (app.state.group_commit, app.state.redemption_commit, app.state.audit_commit)
    for commit in kinds:
        commit.start()
    try:
        yield
    finally:
        for commit in kinds:
            commit.stop()


def _disk_full(exc: BaseException | None) -> bool:
    """SQLITE_FULL, or PostgreSQL's disk_full (SQLSTATE 53100), here or among the errors that led to it:
    SQLite may roll the whole transaction back on SQLITE_FULL, and then a savepoint's rollback fails too."""
    while exc is not None:
        orig = getattr(exc, "orig", exc)
        if "database or disk is full" in str(orig) or getattr(orig, "sqlstate", None) == "53100":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _storage_full_error() -> JSONResponse:
    # The failed transaction rolled back whole; an idempotency key makes sending it again safe.
    return error(503, "storage_full", "the database is out of disk space: free space, then retry with the same "
                 "Idempotency-Key (or event_id)")


class AuditLines:
    """ASGI middleware: each write's audit line (security/audit.py), written before its answer leaves — no write
    is acknowledged without its line. The answer is held until then. Plain ASGI, not `@app.middleware("http")`:
    Starlette's BaseHTTPMiddleware (a task group and a stream per request) took 15–20 % of a single event's
    CPU under load (a py-spy profile of the server, GIL-holding samples)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        collected: list[Any] = []  # what the request's transactions change (security/changes.py)
        held: list[dict] = []

        async def hold(message: dict) -> None:
            held.append(message)

        token = changes.current.set(collected)
        try:
            await self.app(scope, receive, hold)
        finally:
            changes.current.reset(token)
        request = Request(scope)
        who = getattr(request.state, "principal", None)
        # A POST that only reads (a draft's check) says so; it is audited all the same if it wrote anything.
        reads_only = getattr(request.state, "reads_only", False) and not collected
        if who is not None and not reads_only:
            detail = {"idempotency_key": request.headers.get("idempotency-key"), "query": str(request.url.query),
                      "changes": changes.summary(collected)}
            if getattr(request.state, "audit_member", None):  # a write about a member its path does not name
                detail["member"] = request.state.audit_member
            status = next(m["status"] for m in held if m["type"] == "http.response.start")
            line = {"program_id": who.program_id, "actor": who.actor, "role": who.role, "method": request.method,
                    "path": request.url.path, "status": status, "detail": detail}
            state = scope["app"].state
            # With the concurrent requests' lines (one lock of the chain's head for all), or alone.
            try:
                if await asyncio.wrap_future(state.audit_commit.submit(None, line)) is ALONE:
                    await run_in_threadpool(run_in_transaction, state.sessions, lambda s: audit.append(s, **line))
            except OperationalError as exc:
                # No write is acknowledged without its audit line: the retry (same key) is a replay, audited then.
                if not _disk_full(exc):
                    raise
                await _storage_full_error()(scope, receive, send)
                return
        for message in held:
            await send(message)


def create_app(database_url: str | None = None) -> FastAPI:
    # FastAPIOffline: /docs and /redoc with Swagger UI and ReDoc served from the wheel, not a CDN,
    # so the documentation works on a closed network.
    app = FastAPIOffline(
        title="Jifen",
        version=__version__,
        description="Membership points (積分) and loyalty platform. Every write (a POST, PUT or DELETE that changes "
        "state) takes an `Idempotency-Key`, except events, whose `event_id` is their key; errors are "
        "`{\"error\": {\"code\", \"message\"}}` (the `Error` schema), listed on each operation that can give them.",
        lifespan=_lifespan,
    )
    install_openapi(app)
    app.state.engine = make_engine(database_url or get_settings().database_url)
    app.state.sessions = make_sessionmaker(app.state.engine)
    app.state.read_sessions = make_read_sessionmaker(app.state.engine)
    app.state.lookups = make_lookup_sessionmaker(app.state.engine)
    app.state.known_keys = KnownKeys()  # API keys found a moment ago (security/deps.py)
    changes.listen(app.state.sessions)  # before/after values of each write, for the audit log
    settings = get_settings()
    app.state.group_commit = GroupCommit(app.state.sessions, settings.group_commit_ms, settings.group_commit_max)
    app.state.redemption_commit = GroupCommit(app.state.sessions, settings.group_commit_ms, settings.group_commit_max,
                                              commit_redemptions, "redemptions")
    app.state.audit_commit = GroupCommit(app.state.sessions, settings.group_commit_ms, settings.group_commit_max,
                                         audit.commit_lines, "audit")

    @app.exception_handler(JifenError)
    def _jifen_error(request: Request, exc: JifenError):
        if request.url.path.startswith("/m/"):  # the member centre answers with a page in the member's language
            return problem_page(request, exc)
        return error(exc.status, exc.code, exc.message, **exc.details)

    @app.exception_handler(RiskBlocked)
    def _risk_blocked(request: Request, exc: RiskBlocked):
        # Nothing of the refused request stays; its case and alert do, in a transaction of their own.
        who = getattr(request.state, "principal", None)
        if who is not None:
            risk_cases.record_refusal(app.state.sessions, who.program_id, exc)
        return _jifen_error(request, exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError):
        status, code, message, details = _validation_message(exc)
        if request.url.path.startswith("/m/"):  # a member-centre form: the page in the member's language
            return problem_page(request, JifenError(message, code=code, status=status))
        return error(status, code, message, details=details)

    @app.exception_handler(DataError)
    @app.exception_handler(StatementError)
    @app.exception_handler(OverflowError)
    def _out_of_range(_: Request, exc: Exception):
        # An id or number too large for the database's integer columns (a 64-bit integer): bad input.
        cause = getattr(exc, "orig", exc)
        if isinstance(exc, DataError) or isinstance(cause, OverflowError):
            return error(422, "out_of_range", "a number in the request is out of range")
        raise exc

    @app.exception_handler(OperationalError)
    def _storage_full(_: Request, exc: OperationalError):
        if _disk_full(exc):
            return _storage_full_error()
        raise exc

    # Starlette types a handler as taking any Exception; this one takes the exception class it is registered for.
    app.add_exception_handler(console.Refused, console.refused_page)  # type: ignore[arg-type]  # the console's 403 page
    app.add_exception_handler(Problem, problem_page)  # type: ignore[arg-type]  # the member centre's refusals

    @app.exception_handler(HTTPException)
    def _http(request: Request, exc: HTTPException):
        if 300 <= exc.status_code < 400:  # the console sends signed-out visitors to its sign-in page
            return RedirectResponse(cast(Mapping[str, str], exc.headers)["Location"], status_code=exc.status_code)
        if exc.status_code == 400 and isinstance(exc.__cause__, (RecursionError, UnicodeDecodeError)):
            # FastAPI could not decode the body: nested deeper than Python's JSON parser goes (about
            # 1,000 levels: a RecursionError), or not UTF-8.
            why = "nested too deeply" if isinstance(exc.__cause__, RecursionError) else "not UTF-8"
            return error(400, "malformed_json", f"request body is not valid JSON ({why})")
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:  # Allow (RFC 9110) names every route's methods, not only the first route's
            methods = {m for r in api_routes(app.routes) if r.path_regex.match(request.url.path) for m in r.methods or ()}
            headers = {"Allow": ", ".join(sorted(methods))} if methods else headers
        return error(exc.status_code, code, str(exc.detail), headers=headers)

    # Added first, so inside AuditLines: its refusal must reach the route reading the body as it is (a
    # BaseHTTPMiddleware between them hands receive() over through a task group, wrapping the exception).
    app.add_middleware(UniqueNames)  # inside BodyLimit: it reads a body whole, once BodyLimit has bounded it
    app.add_middleware(BodyLimit, limit=MAX_BODY)

    app.add_middleware(AuditLines)

    @app.get("/healthz", tags=["ops"], summary="Liveness and database reachability")
    def healthz():
        with app.state.read_sessions() as session:
            session.connection()
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"], summary="Ready for traffic: the database answers and its schema is current",
             responses=errors(503))
    def readyz():
        with app.state.read_sessions() as session:
            current, head = schema_revisions(session.connection())
        if current != head:
            return error(503, "not_ready", f"the database schema is at {current or 'nothing'}, this release needs "
                         f"{head}: run `jifen db upgrade`")
        return {"status": "ready", "version": __version__, "schema": head}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (text exposition format)",
             response_class=PlainTextResponse)
    def metrics():
        return PlainTextResponse(scrape(app.state.read_sessions), media_type=CONTENT_TYPE_LATEST)

    app.include_router(members_router)
    app.include_router(points_router)
    app.include_router(events_router)
    app.include_router(rules_router)
    app.include_router(notify_router)
    app.include_router(mall_router)
    app.include_router(risk_router)
    app.include_router(engagement_router)
    app.include_router(analytics_router)
    app.include_router(campaigns_router)
    app.include_router(recommend_router)
    app.include_router(automations_router)
    app.include_router(console_router)
    app.include_router(dashboard_router)
    app.include_router(analytics_pages_router)
    app.include_router(engagement_page_router)
    app.include_router(campaigns_page_router)
    app.include_router(public_router)
    app.include_router(rules_editor_router)
    app.include_router(notifications_page_router)
    app.include_router(mall_page_router)
    app.include_router(member_actions_router)
    app.include_router(signin_router)
    app.include_router(users_page_router)
    for governance in (audit_page_router, apikeys_page_router, webhooks_page_router, coupons_page_router,
                       approvals_page_router):
        app.include_router(governance)
    app.include_router(risk_page_router)
    app.include_router(automations_page_router)
    for member_centre in (member_centre_router, member_mall_router, member_engage_router):  # /m/…
        app.include_router(member_centre)
    app.state.simulation_runs = SimulationRuns()  # the rule editor's background simulations
    app.mount("/console/static", StaticFiles(directory=Path(console.__file__).parent / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/console")

    app.add_middleware(RequestTimer)  # added last: outermost, so it times everything the others do
    return app
