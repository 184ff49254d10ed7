"""The dispatcher: turns outbox messages into deliveries (fan-out), then sends what is due.

At least once: a delivery is claimed with a lease and committed before it is sent; a dispatcher that
dies mid-batch leaves leases that expire, and the deliveries are sent again with the same id. Ordered:
a delivery is not sent while an earlier one to the same target for the same member is still pending.
Retries back off exponentially with jitter; after the last attempt a delivery is dead-lettered, and
`replay` brings it back. Several dispatchers can run at once (SKIP LOCKED on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from jifen.config import Settings, get_settings
from jifen.db import run_in_transaction, utcnow
from jifen.members import consent
from jifen.members.models import Member
from jifen.notify.channels import DeliveryError, NoAddress, Outgoing, send
from jifen.notify.models import Delivery, InboxItem, OptOut, WebhookSubscription
from jifen.notify.templates import MARKETING_TOPICS, TEMPLATES, channels_for, render
from jifen.outbox import OutboxMessage
from jifen.programs.models import Program

LEASE = dt.timedelta(seconds=60)
PROVIDER_CHANNELS = ("sms", "wechat")  # quiet hours and the daily cap apply to these
_earlier = aliased(Delivery)
_DUE = (select(Delivery).where(
    ((Delivery.status == "pending") & (Delivery.next_attempt_at <= bindparam("now")))
    | ((Delivery.status == "sending") & (Delivery.lease_until < bindparam("now"))),
    ~exists().where(and_(_earlier.channel == Delivery.channel, _earlier.target == Delivery.target,
                         _earlier.order_key == Delivery.order_key, _earlier.id < Delivery.id,
                         _earlier.status.in_(("pending", "sending")))),
).order_by(Delivery.id).limit(bindparam("batch")).with_for_update(skip_locked=True))
_NEW = (select(OutboxMessage).where(OutboxMessage.fanned_out.is_(False)).order_by(OutboxMessage.id)
        .limit(bindparam("batch")).with_for_update(skip_locked=True))


def backoff(attempts: int, rng: random.Random = random.Random()) -> dt.timedelta:
    """5 s, 10 s, 20 s … capped at an hour, each × 0.5–1.5 so retries of many deliveries spread out."""
    return dt.timedelta(seconds=min(5 * 2 ** (attempts - 1), 3600) * rng.uniform(0.5, 1.5))


def allowed_at(moment: dt.datetime, channel: str, tz: ZoneInfo, quiet: tuple[int, int]) -> dt.datetime:
    """The first moment at or after `moment` outside quiet hours (for SMS and WeChat)."""
    if channel not in PROVIDER_CHANNELS:
        return moment
    start, end = quiet
    local = moment.astimezone(tz)
    if not (local.hour >= start or local.hour < end):
        return moment
    day = local.date() + dt.timedelta(days=1 if local.hour >= start else 0)
    return dt.datetime.combine(day, dt.time(end), tz).astimezone(dt.UTC)


def fan_out(factory: sessionmaker[Session], now: dt.datetime | None = None, batch: int = 500,
            settings: Settings | None = None) -> int:
    """Deliveries for new outbox messages: matching webhook subscriptions, and member channels by topic."""
    settings = settings or get_settings()
    now = now or utcnow()

    def one_batch(s: Session) -> int:
        messages = list(s.scalars(_NEW, {"batch": batch}))
        if not messages:
            return 0
        subs = defaultdict(list)
        for sub in s.scalars(select(WebhookSubscription).where(WebhookSubscription.active.is_(True))):
            subs[sub.program_id].append(sub)
        members = _members(s, {m.member_pk for m in messages if m.member_pk})
        opted = set(s.execute(select(OptOut.member_pk, OptOut.channel).where(
            OptOut.member_pk.in_(list(members) or [0]))).all())
        # Marketing needs the member's consent for the channel's purpose (opt-in; a withdrawal acts as an opt-out).
        consented = consent.granted(s, {m.member_pk for m in messages if m.topic in MARKETING_TOPICS} & set(members),
                                    set(consent.CHANNEL_PURPOSE.values()))
        programs = {p.id: p for p in s.scalars(select(Program))}
        for m in messages:
            key = str(m.member_pk or "")
            for sub in subs[m.program_id]:
                if "*" in sub.topics or m.topic in sub.topics:
                    s.add(Delivery(message_id=m.id, program_id=m.program_id, channel="webhook", target=str(sub.id),
                                   order_key=key, next_attempt_at=now, created_at=now))
            if settings.redis_url and m.topic == "points.awarded" and m.member_pk in members:
                s.add(Delivery(message_id=m.id, program_id=m.program_id, channel="board", target="redis",
                               order_key=key, next_attempt_at=now, created_at=now))
            if m.member_pk in members and m.topic in TEMPLATES:
                tz = ZoneInfo(programs[m.program_id].timezone)
                for channel in channels_for(m.topic, m.payload):
                    if not _channel_on(channel, settings):
                        continue
                    d = Delivery(message_id=m.id, program_id=m.program_id, channel=channel, target=key, order_key=key,
                                 next_attempt_at=allowed_at(now, channel, tz, settings.quiet_hours), created_at=now)
                    if (m.member_pk, channel) in opted:
                        d.status, d.last_error = "skipped", "member opted out of this channel"
                    elif members[m.member_pk].erased_at is not None:
                        d.status, d.last_error = "skipped", "member erased"
                    elif m.topic in MARKETING_TOPICS and (m.member_pk, consent.CHANNEL_PURPOSE[channel]) not in consented:
                        d.status, d.last_error = "skipped", f"no {consent.CHANNEL_PURPOSE[channel]} consent"
                    elif channel in PROVIDER_CHANNELS and (
                            _sent_today(s, m.member_pk, channel, now, tz) >= settings.sms_per_day):
                        d.status, d.last_error = "skipped", f"daily cap of {settings.sms_per_day} reached"
                    s.add(d)
                    s.flush()
            m.fanned_out = True
        return len(messages)

    done = 0
    while (n := run_in_transaction(factory, one_batch)) > 0:
        done += n
    return done


def _channel_on(channel: str, settings: Settings) -> bool:
    return {"inapp": True, "email": bool(settings.smtp_url), "sms": bool(settings.sms_url),
            "wechat": bool(settings.wechat_url)}.get(channel, False)


def _sent_today(s: Session, member_pk: int, channel: str, now: dt.datetime, tz: ZoneInfo) -> int:
    midnight = dt.datetime.combine(now.astimezone(tz).date(), dt.time(), tz).astimezone(dt.UTC)
    # COUNT(*) is always one row; SQLAlchemy types scalar() as optional.
    return cast(int, s.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.channel == channel, Delivery.target == str(member_pk), Delivery.created_at >= midnight,
        Delivery.status != "skipped")))


def _members(s: Session, pks) -> dict[int, Member]:
    return {m.id: m for m in s.scalars(select(Member).where(Member.id.in_(list(pks))))} if pks else {}


def deliver(factory: sessionmaker[Session], now: dt.datetime | None = None, batch: int = 100,
            settings: Settings | None = None) -> dict[str, int]:
    """Claim what is due (one transaction), send it, record each outcome (one transaction)."""
    settings = settings or get_settings()
    now = now or utcnow()
    counts = {"delivered": 0, "retrying": 0, "dead": 0, "skipped": 0}

    def claim(s: Session) -> list[Outgoing]:
        due = list(s.scalars(_DUE, {"now": now, "batch": batch}))
        # One per (channel, target, member) per round: the next waits for this one's outcome.
        seen, chosen = set(), []
        for d in due:
            if (d.channel, d.target, d.order_key) not in seen:
                seen.add((d.channel, d.target, d.order_key))
                chosen.append(d)
        for d in chosen:
            d.status, d.lease_until, d.attempts = "sending", now + LEASE, d.attempts + 1
        return _prepare(s, chosen)

    outgoing = run_in_transaction(factory, claim)
    results: list[tuple[Outgoing, tuple[str, str] | None]] = []
    for out in outgoing:
        if out.delivery.channel == "inapp":
            results.append((out, None))
            continue
        try:
            send(out, settings, now)
            results.append((out, None))
        except NoAddress as exc:
            results.append((out, ("skipped", str(exc))))
        except DeliveryError as exc:
            results.append((out, ("failed", str(exc))))

    def record(s: Session) -> None:
        for out, problem in results:
            d = s.get_one(Delivery, out.delivery.id)
            if d.status != "sending" or d.lease_until != now + LEASE:
                continue  # our lease ran out and another dispatcher took it over
            if problem is None:
                if d.channel == "inapp":
                    assert out.member is not None  # in-app deliveries are a member's
                    s.add(InboxItem(member_pk=out.member.id, delivery_id=d.id, topic=out.message.topic,
                                    title=out.title, body=out.body, created_at=now))
                d.status, d.delivered_at, d.lease_until, d.last_error = "delivered", now, None, None
                counts["delivered"] += 1
            elif problem[0] == "skipped":
                d.status, d.lease_until, d.last_error = "skipped", None, problem[1]
                counts["skipped"] += 1
            elif d.attempts >= settings.webhook_max_attempts:
                d.status, d.lease_until, d.last_error = "dead", None, problem[1]
                counts["dead"] += 1
            else:
                tz = ZoneInfo(s.get_one(Program, d.program_id).timezone)
                d.status, d.lease_until, d.last_error = "pending", None, problem[1]
                d.next_attempt_at = allowed_at(now + backoff(d.attempts), d.channel, tz, settings.quiet_hours)
                counts["retrying"] += 1

    if results:
        run_in_transaction(factory, record)
    return counts


def _prepare(s: Session, deliveries: list[Delivery]) -> list[Outgoing]:
    """What each claimed delivery sends: its message, the member, the subscription, the rendered text."""
    messages = {m.id: m for m in s.scalars(select(OutboxMessage).where(
        OutboxMessage.id.in_([d.message_id for d in deliveries] or [0])))}
    members = _members(s, {m.member_pk for m in messages.values() if m.member_pk})
    programs = {p.id: p for p in s.scalars(select(Program).where(
        Program.id.in_({d.program_id for d in deliveries} or {0})))}
    subs = {str(x.id): x for x in s.scalars(select(WebhookSubscription).where(
        WebhookSubscription.id.in_([int(d.target) for d in deliveries if d.channel == "webhook"] or [0])))}
    out = []
    for d in deliveries:
        m = messages[d.message_id]
        member = members.get(m.member_pk)  # type: ignore[arg-type]  # (None → None; typeshed's dict.get wants an int)
        data = {k: v for k, v in m.payload.items() if not k.endswith("_pk")}
        if member is not None:
            data["member_id"] = member.member_id
        title = body = ""
        if d.channel not in ("webhook", "board"):
            lang = (member.attributes or {}).get("lang", "zh") if member else "zh"
            title, body = render(m.topic, m.payload, lang)
        out.append(Outgoing(d, m, data, title, body, member, subs.get(d.target), programs.get(d.program_id)))
    s.flush()
    for o in out:  # detached copies travel outside the transaction
        s.expunge(o.delivery)
    for p in programs.values():
        s.expunge(p)
    return out


REPLAYABLE = ("dead", "delivered")  # a delivered one: its receiver lost it and asks again


def replay(session: Session, delivery_ids: list[int], now: dt.datetime, statuses: tuple[str, ...] = ("dead",)) -> int:
    """Dead-lettered (or, asked for, delivered) deliveries back in line, attempts reset. The same delivery,
    so the same webhook-id: receivers that already have it de-duplicate; one already in line is left be."""
    # An UPDATE's result is a CursorResult (rowcount); Session.execute is typed as returning a plain Result.
    return cast(CursorResult[Any], session.execute(update(Delivery).where(
        Delivery.id.in_(delivery_ids), Delivery.status.in_(statuses)).values(
        status="pending", attempts=0, next_attempt_at=now, last_error=None, delivered_at=None))).rowcount


def run_once(factory: sessionmaker[Session], now: dt.datetime | None = None,
             settings: Settings | None = None) -> dict[str, int]:
    """Fan out everything new, then send until nothing is due."""
    fanned = fan_out(factory, now, settings=settings)
    total = {"fanned_out": fanned, "delivered": 0, "retrying": 0, "dead": 0, "skipped": 0}
    while True:
        counts = deliver(factory, now, settings=settings)
        for k, v in counts.items():
            total[k] += v
        if not any(counts.values()):
            return total
