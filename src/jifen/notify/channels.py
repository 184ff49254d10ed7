"""Sending one delivery on its channel. Each sender raises DeliveryError on failure; the dispatcher
retries. Webhooks are signed the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature:
HMAC-SHA256 over "id.timestamp.body"); SMS and WeChat go to the brand's provider adapter as JSON
(docs/notifications.md); e-mail over SMTP."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import cast
from urllib.parse import urlparse

import redis
from standardwebhooks.webhooks import Webhook

from jifen.config import Settings
from jifen.db import utcnow
from jifen.members.models import Member
from jifen.notify.models import Delivery, WebhookSubscription
from jifen.outbox import OutboxMessage
from jifen.programs.models import Program


class DeliveryError(Exception):
    pass


class NoAddress(Exception):
    """The member has no address on this channel: nothing to send, nothing to retry."""


@dataclass
class Outgoing:
    delivery: Delivery
    message: OutboxMessage
    data: dict  # the public payload (member_id resolved)
    title: str = ""
    body: str = ""
    member: Member | None = None
    subscription: WebhookSubscription | None = None
    program: Program | None = None


def webhook_headers(sub: WebhookSubscription, msg_id: str, body: str, now: dt.datetime) -> dict[str, str]:
    """Signed at the wall-clock time of sending (receivers reject old timestamps); `now` is the
    dispatcher's clock, which decides whether a rotated-out secret still signs."""
    sent = utcnow()
    signatures = [Webhook(sub.secret).sign(msg_id, sent, body)]
    if sub.previous_secret and sub.previous_until and sub.previous_until > now:
        signatures.append(Webhook(sub.previous_secret).sign(msg_id, sent, body))
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(sent.timestamp())),
            "webhook-signature": " ".join(signatures), "content-type": "application/json"}


def _post(url: str, body: str, headers: dict[str, str], timeout: float = 10) -> None:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def message_id(delivery: Delivery) -> str:
    return f"jd_{delivery.id}"  # the same on every retry: receivers de-duplicate on it


def send(out: Outgoing, settings: Settings, now: dt.datetime) -> None:
    channel = out.delivery.channel
    if channel == "webhook":
        body = json.dumps({"type": out.message.topic, "timestamp": out.message.created_at.isoformat(),
                           "data": out.data}, ensure_ascii=False, separators=(",", ":"))
        assert out.subscription is not None  # a webhook delivery's target is its subscription
        _post(out.subscription.url, body, webhook_headers(out.subscription, message_id(out.delivery), body, now))
    elif channel == "email":
        _email(out, settings)
    elif channel in ("sms", "wechat"):
        _provider(out, settings)
    elif channel == "board":
        _board(out, settings)
    else:
        raise DeliveryError(f"no sender for channel {channel!r}")


def _board(out: Outgoing, settings: Settings) -> None:
    """The Redis leaderboards (engagement/boards.py)."""
    from jifen.engagement import boards  # (the engagement layer sits above notifications)

    # Board deliveries exist only with Redis configured, for a member's award (dispatcher.py).
    assert out.program is not None and out.member is not None

    try:
        boards.apply_award(cast(str, settings.redis_url), out.program, out.delivery.id, out.member.member_id,
                           int(out.message.payload["points"]), dt.datetime.fromisoformat(out.message.payload["occurred_at"]))
    except redis.RedisError as exc:
        raise DeliveryError(f"redis: {exc}") from None


def _email(out: Outgoing, settings: Settings) -> None:
    assert out.member is not None  # e-mail, SMS and WeChat deliveries are a member's
    if not out.member.email:
        raise NoAddress("no e-mail address")
    url = urlparse(cast(str, settings.smtp_url))  # (e-mail deliveries are made only with smtp_url set)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = settings.mail_from, out.member.email, out.title
    mail["Message-ID"] = f"<{message_id(out.delivery)}@jifen>"
    mail.set_content(out.body)
    try:
        # SMTP(None) is valid (it does not connect); typeshed wants a str.
        with smtplib.SMTP(url.hostname, url.port or 25, timeout=10) as smtp:  # type: ignore[arg-type]
            smtp.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {url.hostname}:{url.port}: {exc}") from None


def _provider(out: Outgoing, settings: Settings) -> None:
    """The adapter interface: POST {message_id, channel, to, template, title, text, params}; 2xx = accepted."""
    channel = out.delivery.channel
    assert out.member is not None  # e-mail, SMS and WeChat deliveries are a member's
    to = out.member.phone if channel == "sms" else (out.member.attributes or {}).get("wechat_openid")
    if not to:
        raise NoAddress(f"no {channel} address")
    body = json.dumps({"message_id": message_id(out.delivery), "channel": channel, "to": to,
                       "template": out.message.topic, "title": out.title, "text": out.body, "params": out.data},
                      ensure_ascii=False)
    headers = {"content-type": "application/json"}
    if settings.provider_token:
        headers["authorization"] = f"Bearer {settings.provider_token}"
    _post(cast(str, settings.sms_url if channel == "sms" else settings.wechat_url), body, headers)  # (set: see _email)
