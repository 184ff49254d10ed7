"""The console's webhook endpoints (webhooks:manage): the list with each endpoint's deliveries by status,
a new endpoint (its signing secret shown on the answer, once), disabling one, an endpoint's delivery log
(status, attempts, last error, times) and replaying a delivery. Through notify/service.py and the
dispatcher as the API: a replay puts the same delivery back in line, so it goes out again with the same
event id (webhook-id) and a receiver that has it already de-duplicates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from jifen.db import owned, run_in_transaction, utcnow
from jifen.errors import Conflict, JifenError
from jifen.idempotency import idempotent
from jifen.notify import dispatcher, service
from jifen.notify.models import Delivery, WebhookSubscription
from jifen.outbox import OutboxMessage
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import allowed, render
from jifen.web.forms import done_of, submit

router = APIRouter(prefix="/console", include_in_schema=False)
Manager = Annotated[Principal, allowed("webhooks:manage")]
ManagerForm = Annotated[Principal, allowed("webhooks:manage", write=True)]
Text = Annotated[str, Form()]
STATUSES = ("delivered", "pending", "sending", "dead", "skipped")
LOG_SIZE = 100


def _list(request: Request, who: Principal, status: int = 200, **shown):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        subs = list(s.scalars(select(WebhookSubscription).where(WebhookSubscription.program_id == program.id)
                              .order_by(WebhookSubscription.id)))
        counts: dict[str, dict[str, int]] = {}
        for target, st, n in s.execute(select(Delivery.target, Delivery.status, func.count()).where(
                Delivery.channel == "webhook", Delivery.target.in_([str(x.id) for x in subs] or [""]))
                .group_by(Delivery.target, Delivery.status)):
            counts.setdefault(target, {})[st] = n
    return render(request, "webhooks.html", status=status, who=who, subs=subs, counts=counts, statuses=STATUSES,
                  tz=program.timezone, done=done_of(request, ("disable",)),
                  **{"error": None, "form": {}, "created": None, "secret": None} | shown)


@router.get("/webhooks")
def endpoints(request: Request, who: Manager):
    return _list(request, who)


@router.post("/webhooks")
def endpoint_create(request: Request, who: ManagerForm, url: Text = "", topics: Text = "", once: Text = ""):
    """The signing secret is in this answer only (the API's create shows it the same once)."""
    form = {"url": url.strip(), "topics": topics}
    wanted = sorted({x.strip() for x in topics.split(",") if x.strip()})

    def tx(s):
        def make() -> dict:
            if not wanted:
                raise JifenError("name at least one topic (or * for all)", code="topics_required", status=422)
            return {"id": service.subscribe(s, who.program_id, url.strip()[:500], wanted, utcnow()).id}

        return idempotent(s, who.program_id, f"console:{once}", "console.webhook", form, make)

    try:
        result, replayed = run_in_transaction(request.app.state.sessions, tx)
    except JifenError as exc:
        return _list(request, who, status=422, error=exc.message, form=form)
    with request.app.state.read_sessions() as s:
        secret = None if replayed else service.get_subscription(s, who.program_id, result["id"]).secret
    return _list(request, who, created=result["id"], secret=secret)


@router.post("/webhooks/{sub_id}/disable")
def endpoint_disable(request: Request, who: ManagerForm, sub_id: int):
    def tx(s):
        service.get_subscription(s, who.program_id, sub_id).active = False

    try:
        run_in_transaction(request.app.state.sessions, tx)
    except JifenError as exc:
        return _list(request, who, status=exc.status, error=exc.message)
    return RedirectResponse("/console/webhooks?done=disable", status_code=303)


def _log(request: Request, who: Principal, sub_id: int, status: int = 200, error: str | None = None):
    shown = request.query_params.get("status") or None
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        try:
            sub = service.get_subscription(s, program.id, sub_id)
        except JifenError as exc:
            return _list(request, who, status=exc.status, error=exc.message)
        rows = service.deliveries(s, program.id, sub_id=sub.id, status=shown if shown in STATUSES else None,
                                  limit=LOG_SIZE)
        topics = dict(s.execute(select(Delivery.id, OutboxMessage.topic).join(
            OutboxMessage, OutboxMessage.id == Delivery.message_id).where(Delivery.id.in_([d.id for d in rows] or [0]))
        ).all())
    return render(request, "webhook_log.html", status=status, who=who, sub=sub, rows=rows, topics=topics,
                  statuses=STATUSES, shown=shown, replayable=dispatcher.REPLAYABLE, tz=program.timezone,
                  error=error, done=done_of(request, ("replay",)), size=LOG_SIZE)


@router.get("/webhooks/{sub_id}")
def delivery_log(request: Request, who: Manager, sub_id: int):
    return _log(request, who, sub_id)


@router.post("/webhooks/{sub_id}/deliveries/{delivery_id}/replay")
def replay(request: Request, who: ManagerForm, sub_id: int, delivery_id: int, once: Text = ""):
    """Once per form (its one-time key); a delivery already back in line is not queued twice."""
    def work(sc):
        d = owned(sc.session, Delivery, delivery_id, who.program_id, "delivery", "unknown_delivery")
        if d.channel != "webhook" or d.target != str(sub_id):
            raise Conflict(f"delivery jd_{delivery_id} is not one of endpoint {sub_id}'s", code="unknown_delivery")
        if not dispatcher.replay(sc.session, [d.id], sc.now, dispatcher.REPLAYABLE):
            raise Conflict(f"delivery jd_{delivery_id} is {d.status}: it is already in line", code="not_replayable")

    error = submit(request, who, once, f"replay:{delivery_id}", {"delivery": delivery_id}, work)
    if error:
        return _log(request, who, sub_id, status=409, error=error)
    return RedirectResponse(f"/console/webhooks/{sub_id}?done=replay", status_code=303)
