"""Webhook subscriptions, the inbox and opt-outs: what the API and the CLI call."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.db import owned
from jifen.errors import InvalidRequest, NotFound
from jifen.members.models import Member
from jifen.notify.models import Delivery, InboxItem, OptOut, WebhookSubscription

CHANNELS = ("inapp", "email", "sms", "wechat")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def subscribe(session: Session, program_id: int, url: str, topics: list[str], now: dt.datetime) -> WebhookSubscription:
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest("url must be http:// or https://", code="invalid_url")
    sub = WebhookSubscription(program_id=program_id, url=url, topics=sorted(set(topics)), secret=new_secret(),
                              active=True, created_at=now)
    session.add(sub)
    session.flush()
    return sub


def get_subscription(session: Session, program_id: int, sub_id: int) -> WebhookSubscription:
    return owned(session, WebhookSubscription, sub_id, program_id, "webhook subscription", "unknown_webhook")


def rotate(session: Session, sub: WebhookSubscription, now: dt.datetime, grace: dt.timedelta) -> str:
    """A new secret; the old one keeps signing (a second signature) until the grace ends."""
    sub.previous_secret, sub.previous_until, sub.secret = sub.secret, now + grace, new_secret()
    return sub.secret


def deliveries(session: Session, program_id: int, *, sub_id: int | None = None, status: str | None = None,
               limit: int = 100) -> list[Delivery]:
    q = select(Delivery).where(Delivery.program_id == program_id).order_by(Delivery.id.desc()).limit(limit)
    if sub_id is not None:
        q = q.where(Delivery.channel == "webhook", Delivery.target == str(sub_id))
    if status:
        q = q.where(Delivery.status == status)
    return list(session.scalars(q))


def inbox(session: Session, member: Member, unread_only: bool, limit: int) -> list[InboxItem]:
    q = select(InboxItem).where(InboxItem.member_pk == member.id).order_by(InboxItem.id.desc()).limit(limit)
    if unread_only:
        q = q.where(InboxItem.read_at.is_(None))
    return list(session.scalars(q))


def mark_read(session: Session, member: Member, item_id: int, now: dt.datetime) -> InboxItem:
    item = session.get(InboxItem, item_id)
    if item is None or item.member_pk != member.id:
        raise NotFound(f"no inbox item {item_id}", code="unknown_inbox_item")
    item.read_at = item.read_at or now
    return item


def set_opt_outs(session: Session, member: Member, channels: list[str], now: dt.datetime) -> list[str]:
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise InvalidRequest(f"unknown channel {sorted(unknown)[0]!r} (use {', '.join(CHANNELS)})",
                             code="unknown_channel")
    for row in session.scalars(select(OptOut).where(OptOut.member_pk == member.id)):
        session.delete(row)
    session.flush()
    session.add_all(OptOut(member_pk=member.id, channel=c, created_at=now) for c in sorted(set(channels)))
    return sorted(set(channels))
