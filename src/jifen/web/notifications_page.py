"""The console's notifications page: delivery health by channel, webhook subscriptions, dead letters
(with replay)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select

from jifen.db import run_in_transaction, utcnow
from jifen.notify import dispatcher, service
from jifen.notify.models import Delivery, WebhookSubscription
from jifen.outbox import OutboxMessage
from jifen.programs.models import Program
from jifen.security.service import PERMISSIONS, Principal
from jifen.web.console import SignedIn, allowed, render

router = APIRouter(prefix="/console", include_in_schema=False)
STATUSES = ("delivered", "pending", "sending", "skipped", "dead")


@router.get("/notifications")
def notifications(request: Request, who: SignedIn):
    since = utcnow() - dt.timedelta(days=7)
    with request.app.state.read_sessions() as s:
        program = s.get(Program, who.program_id)
        counts = s.execute(select(Delivery.channel, Delivery.status, func.count()).where(
            Delivery.program_id == program.id, Delivery.created_at >= since).group_by(Delivery.channel, Delivery.status))
        table: dict[str, dict[str, int]] = {}
        for channel, status, n in counts:
            table.setdefault(channel, dict.fromkeys(STATUSES, 0))[status] = n
        waiting = s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.program_id == program.id, OutboxMessage.fanned_out.is_(False)))
        subs = list(s.scalars(select(WebhookSubscription).where(WebhookSubscription.program_id == program.id)
                              .order_by(WebhookSubscription.id)))
        dead = service.deliveries(s, program.id, status="dead", limit=50)
        topics = dict(s.execute(select(Delivery.id, OutboxMessage.topic).join(
            OutboxMessage, OutboxMessage.id == Delivery.message_id).where(Delivery.id.in_([d.id for d in dead] or [0]))
        ).all())
        return render(request, "notifications.html", who=who, table=table, statuses=STATUSES, waiting=waiting,
                      subs=subs, dead=dead, topics=topics, tz=program.timezone,
                      can_replay=who.role in PERMISSIONS["webhooks:manage"])


@router.post("/notifications/replay")
def replay(request: Request, who: Annotated[Principal, allowed("webhooks:manage", write=True)],
           delivery_id: Annotated[int, Form()]):
    def tx(s):
        d = s.get(Delivery, delivery_id)
        if d is not None and d.program_id == who.program_id:
            dispatcher.replay(s, [d.id], utcnow())

    run_in_transaction(request.app.state.sessions, tx)
    return RedirectResponse("/console/notifications", status_code=303)
