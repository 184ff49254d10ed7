"""Webhooks (subscriptions, secret rotation, delivery log, dead-letter replay) and members' inbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from sqlalchemy import select

from jifen.apikit import Key, keyed
from jifen.db import owned, utcnow
from jifen.errors import Conflict
from jifen.members.service import get_member
from jifen.notify import dispatcher, service
from jifen.notify.models import Delivery, InboxItem, WebhookSubscription
from jifen.programs.models import Program
from jifen.security.deps import require
from jifen.security.service import Principal
from jifen.strict import Strict

router = APIRouter(prefix="/v1", tags=["notifications"])
Manager = Annotated[Principal, Depends(require("webhooks:manage"))]
Reader = Annotated[Principal, Depends(require("members:read"))]
Writer = Annotated[Principal, Depends(require("members:write"))]


class SubscriptionIn(Strict):
    url: str = Field(min_length=8, max_length=500)
    topics: list[str] = Field(min_length=1, max_length=50)


class RotateIn(Strict):
    grace_hours: int = Field(24, ge=0, le=24 * 30)


class OptOutsIn(Strict):
    channels: list[str] = Field(max_length=4)


def subscription_view(sub: WebhookSubscription, secret: bool = False) -> dict:
    return {"id": sub.id, "url": sub.url, "topics": sub.topics, "active": sub.active,
            "created_at": sub.created_at.isoformat(), **({"secret": sub.secret} if secret else {})}


def delivery_view(d: Delivery) -> dict:
    return {"id": d.id, "webhook_id": f"jd_{d.id}", "message_id": d.message_id, "channel": d.channel,
            "target": d.target, "status": d.status, "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at.isoformat(), "last_error": d.last_error,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}


def inbox_view(item: InboxItem) -> dict:
    return {"id": item.id, "topic": item.topic, "title": item.title, "body": item.body,
            "created_at": item.created_at.isoformat(), "read_at": item.read_at.isoformat() if item.read_at else None}


@router.post("/webhooks", status_code=201, summary="Subscribe a URL to topics (the signing secret is shown once)")
def create_webhook(body: SubscriptionIn, request: Request, who: Manager, key: Key):
    # The idempotency record keeps the id only; the signing secret is read afresh for the answer (and a replay).
    return keyed(request, who, key, "webhooks.create", body,
                 lambda s: service.subscribe(s, who.program_id, body.url, body.topics, utcnow()).id, status=201,
                 view=lambda s, sub_id: subscription_view(service.get_subscription(s, who.program_id, sub_id), secret=True))


@router.get("/webhooks", summary="Webhook subscriptions")
def list_webhooks(request: Request, who: Manager):
    with request.app.state.read_sessions() as s:
        return [subscription_view(x) for x in s.scalars(select(WebhookSubscription).where(
            WebhookSubscription.program_id == who.program_id).order_by(WebhookSubscription.id))]


@router.delete("/webhooks/{sub_id}", summary="Stop a subscription (its delivery log stays)")
def delete_webhook(sub_id: int, request: Request, who: Manager, key: Key):
    def work(s):
        sub = service.get_subscription(s, who.program_id, sub_id)
        sub.active = False
        return subscription_view(sub)

    return keyed(request, who, key, f"webhooks.delete:{sub_id}", None, work)


@router.post("/webhooks/{sub_id}/rotate", summary="New signing secret; the old one also signs during the grace")
def rotate_webhook(sub_id: int, body: RotateIn, request: Request, who: Manager, key: Key):
    def work(s):
        sub = service.get_subscription(s, who.program_id, sub_id)
        service.rotate(s, sub, utcnow(), dt.timedelta(hours=body.grace_hours))
        return sub.id

    def view(s, stored: int) -> dict:
        sub = service.get_subscription(s, who.program_id, stored)
        until = sub.previous_until
        return subscription_view(sub, secret=True) | {"previous_valid_until": until and until.isoformat()}

    return keyed(request, who, key, f"webhooks.rotate:{sub_id}", body, work, view=view)


@router.get("/webhooks/{sub_id}/deliveries", summary="Delivery log of a subscription, newest first")
def webhook_deliveries(sub_id: int, request: Request, who: Manager, status: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    with request.app.state.read_sessions() as s:
        service.get_subscription(s, who.program_id, sub_id)
        return [delivery_view(d) for d in service.deliveries(s, who.program_id, sub_id=sub_id, status=status,
                                                             limit=limit)]


@router.post("/deliveries/{delivery_id}/replay", summary="Send a dead-lettered delivery again")
def replay_delivery(delivery_id: int, request: Request, who: Manager, key: Key):
    def work(s):
        d = owned(s, Delivery, delivery_id, who.program_id, "delivery", "unknown_delivery")
        if d.status != "dead":
            raise Conflict(f"delivery {delivery_id} is {d.status}, not dead", code="not_dead")
        dispatcher.replay(s, [d.id], utcnow())
        s.refresh(d)
        return delivery_view(d)

    return keyed(request, who, key, f"deliveries.replay:{delivery_id}", None, work)


@router.get("/members/{member_id}/inbox", summary="A member's in-app messages, newest first")
def member_inbox(member_id: str, request: Request, who: Reader, unread: bool = False,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50):
    with request.app.state.read_sessions() as s:
        member = get_member(s, s.get(Program, who.program_id), member_id)
        items = service.inbox(s, member, unread, limit)
        return {"unread": sum(1 for i in items if i.read_at is None), "items": [inbox_view(i) for i in items]}


@router.post("/members/{member_id}/inbox/{item_id}/read", summary="Mark an in-app message read")
def read_item(member_id: str, item_id: int, request: Request, who: Writer, key: Key):
    return keyed(request, who, key, f"inbox.read:{member_id}:{item_id}", None, lambda s: inbox_view(service.mark_read(
        s, get_member(s, s.get_one(Program, who.program_id), member_id), item_id, utcnow())))


@router.put("/members/{member_id}/opt-outs", summary="Channels the member does not want messages on")
def put_opt_outs(member_id: str, body: OptOutsIn, request: Request, who: Writer, key: Key):
    return keyed(request, who, key, f"opt_outs.put:{member_id}", body, lambda s: {"channels": service.set_opt_outs(
        s, get_member(s, s.get_one(Program, who.program_id), member_id), body.channels, utcnow())})
