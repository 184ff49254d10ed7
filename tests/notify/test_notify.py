"""The outbox and its dispatcher against real local receivers: webhooks signed and retried until a
receiver that was down comes back, nothing lost when the dispatcher dies mid-batch, nothing sent for a
rolled-back change, dead letters replayed, e-mail over SMTP, SMS with quiet hours, caps and opt-outs."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from jifen.config import Settings
from jifen.db import run_in_transaction
from jifen.ledger import operations as ops
from jifen.members.service import get_member
from jifen.notify import dispatcher, service
from jifen.notify.models import Delivery
from jifen.outbox import OutboxMessage
from jifen.programs.service import get_program
from tests.conftest import NOW, Ledger, keyed, m
from tests.support.intake import add_members, configure, send_one
from tests.support.receivers import HttpReceiver, SmtpReceiver

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def hook(factory):
    configure(factory, {"pending_days": {}})
    add_members(factory, "alice", "bob")
    receiver = HttpReceiver()
    sub = run_in_transaction(factory, lambda s: service.subscribe(
        s, get_program(s, "default").id, receiver.url, ["points.awarded", "points.spent"], NOW))
    yield receiver, sub.secret
    receiver.stop()


def verified(receiver: HttpReceiver, secret: str) -> list[dict]:
    """Every received webhook, its signature checked with the Standard Webhooks library."""
    return [Webhook(secret).verify(body, headers) | {"id": headers["webhook-id"]} for headers, body in receiver.received]


def test_a_receiver_that_was_down_gets_every_webhook_in_order(factory, hook):
    receiver, secret = hook
    for i in range(3):
        send_one(factory, "alice", amount=100 + i, order_id=f"A{i}", at=NOW + i * MINUTE, now=NOW + 10 * MINUTE)
        send_one(factory, "bob", amount=10 + i, order_id=f"B{i}", at=NOW + i * MINUTE, now=NOW + 10 * MINUTE)
    t = NOW + 10 * MINUTE
    down = dispatcher.run_once(factory, t)
    assert down["fanned_out"] == 6 and down["delivered"] == 0 and down["retrying"] == 2  # one per member waits
    for step in range(1, 4):  # still down: retries back off, nothing is lost
        assert dispatcher.run_once(factory, t + step * dt.timedelta(hours=1))["delivered"] == 0
    receiver.start()
    up = dispatcher.run_once(factory, t + dt.timedelta(days=1))
    assert up["delivered"] == 6 and up["dead"] == 0
    got = verified(receiver, secret)
    assert len(got) == 6 and len({g["id"] for g in got}) == 6  # each once, signature valid
    alice = [g["data"]["points"] for g in got if g["data"]["member_id"] == "alice"]
    assert alice == [100, 111, 112]  # per-member order kept through the retries (¥100 earns no bonus)
    assert {g["type"] for g in got} == {"points.awarded"}
    with factory() as s:
        attempts = s.scalars(select(Delivery.attempts).order_by(Delivery.id)).all()
    assert attempts[0] >= 4 and attempts[-1] >= 1


def test_killing_the_dispatcher_mid_batch_loses_nothing(factory, hook, monkeypatch):
    receiver, secret = hook
    receiver.start()
    for i in range(5):
        send_one(factory, "alice" if i % 2 else "bob", amount=20 + i, order_id=f"O{i}", at=NOW + i * MINUTE,
                 now=NOW + 10 * MINUTE)
    t = NOW + 10 * MINUTE
    real_send, calls = dispatcher.send, []

    def dies_on_second(out, settings, now):
        calls.append(out.delivery.id)
        if len(calls) == 2:
            raise KeyboardInterrupt("dispatcher killed")  # not an error it handles: the process is gone
        real_send(out, settings, now)

    monkeypatch.setattr(dispatcher, "send", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        dispatcher.run_once(factory, t)
    monkeypatch.setattr(dispatcher, "send", real_send)
    assert dispatcher.run_once(factory, t + MINUTE // 2)["delivered"] == 0  # claimed ones are leased
    later = dispatcher.run_once(factory, t + 2 * MINUTE)  # leases ran out: taken over
    assert later["dead"] == 0
    got = verified(receiver, secret)
    ids = Counter(g["id"] for g in got)
    assert len(ids) == 5  # every message arrived
    assert [i for i, n in ids.items() if n > 1] == [f"jd_{calls[0]}"]  # the one sent before the crash, twice


def test_a_rolled_back_change_sends_nothing(factory, hook):
    receiver, _ = hook
    receiver.start()

    def award_then_fail(sc, s):
        ops.award(sc, m(sc, "alice"), 100)
        raise RuntimeError("the order failed after the award")

    with pytest.raises(RuntimeError):
        Ledger(factory, now=NOW).run(award_then_fail)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert dispatcher.run_once(factory, NOW)["delivered"] == 0 and receiver.received == []


def test_dead_letters_and_replay(factory, hook):
    receiver, secret = hook
    receiver.start()
    receiver.status = 500
    send_one(factory, "alice", amount=50, order_id="A", now=NOW)
    settings = Settings(webhook_max_attempts=3)
    for hours in (0, 1, 2, 3):
        dispatcher.run_once(factory, NOW + dt.timedelta(hours=hours), settings)
    with factory() as s:
        (d,) = s.scalars(select(Delivery)).all()
    assert (d.status, d.attempts, d.last_error) == ("dead", 3, f"HTTP 500 from {receiver.url}")
    receiver.status = 200
    with factory() as s, s.begin():
        assert dispatcher.replay(s, [d.id], NOW) == 1
    assert dispatcher.run_once(factory, NOW + dt.timedelta(hours=4), settings)["delivered"] == 1
    assert [g["id"] for g in verified(receiver, secret)][-1] == f"jd_{d.id}"  # the same id as the failed tries


def test_secret_rotation_signs_with_both_during_the_grace(factory, hook):
    receiver, old = hook
    receiver.start()
    new = run_in_transaction(factory, lambda s: service.rotate(
        s, service.get_subscription(s, get_program(s, "default").id, 1), NOW, dt.timedelta(hours=24)))
    send_one(factory, "alice", amount=50, order_id="A", now=NOW)
    dispatcher.run_once(factory, NOW + MINUTE)
    headers, body = receiver.received[-1]
    assert len(headers["webhook-signature"].split()) == 2
    assert Webhook(old).verify(body, headers) and Webhook(new).verify(body, headers)
    send_one(factory, "alice", amount=60, order_id="B", now=NOW + dt.timedelta(days=2))
    dispatcher.run_once(factory, NOW + dt.timedelta(days=2))
    headers, body = receiver.received[-1]
    assert len(headers["webhook-signature"].split()) == 1 and Webhook(new).verify(body, headers)
    with pytest.raises(Exception):
        Webhook(old).verify(body, headers)


def test_tier_change_by_email_over_smtp_and_in_app(factory):
    configure(factory, {"pending_days": {}})
    add_members(factory, "alice")
    run_in_transaction(factory, lambda s: setattr(get_member(s, get_program(s, "default"), "alice"),
                                                  "email", "alice@example.com"))
    with SmtpReceiver() as smtp:
        settings = Settings(smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_from="points@brand.example")
        send_one(factory, "alice", amount=1200, order_id="A", now=NOW)  # silver
        done = dispatcher.run_once(factory, NOW, settings)
        assert done["delivered"] == 2  # e-mail and in-app (WeChat is off: no adapter configured)
        (mail,) = smtp.messages
        assert mail.rcpt_tos == ["alice@example.com"] and mail.mail_from == "points@brand.example"
        text = mail.content.decode()
        assert "銀卡" in text and "普通" in text
    with factory() as s:
        items = service.inbox(s, get_member(s, get_program(s, "default"), "alice"), False, 10)
    assert [(i.topic, i.title) for i in items] == [("tier.changed", "会员等级变更")]


def test_sms_quiet_hours_daily_cap_and_opt_out(factory):
    configure(factory, {"pending_days": {}})
    add_members(factory, "alice", "bob")
    run_in_transaction(factory, lambda s: [setattr(get_member(s, get_program(s, "default"), x), "phone", "13800000000")
                                           for x in ("alice", "bob")])
    provider = HttpReceiver().start()
    settings = Settings(sms_url=provider.url, provider_token="t0k", sms_per_day=2)
    with factory() as s, s.begin():
        program = get_program(s, "default")
        service.set_opt_outs(s, get_member(s, program, "bob"), ["sms"], NOW)
        for member in ("alice", "alice", "alice", "bob"):
            from jifen.outbox import emit

            emit(s, program.id, "points.expiring", {"points": 1520, "date": "2026-12-31", "stage": "1m",
                                                    "reward": {"name": "電烤箱", "value": "89"}},
                 get_member(s, program, member).id)
    night = dt.datetime(2026, 6, 1, 15, 30, tzinfo=dt.UTC)  # 23:30 in Shanghai
    first = dispatcher.run_once(factory, night, settings)
    assert first["delivered"] == 4 and provider.received == []  # in-app only; SMS waits for the morning
    morning = dt.datetime(2026, 6, 2, 0, 0, tzinfo=dt.UTC)  # 08:00 in Shanghai
    dispatcher.run_once(factory, morning, settings)
    sent = [json.loads(body) for _, body in provider.received]
    assert len(sent) == 2  # the daily cap of 2; bob opted out of SMS
    assert sent[0]["text"] == "您有1520分将于2026-12-31过期,可兑换价值89元的電烤箱。" and sent[0]["to"] == "13800000000"
    assert provider.received[0][0]["authorization"] == "Bearer t0k"
    with factory() as s:
        skipped = Counter(s.scalars(select(Delivery.last_error).where(Delivery.status == "skipped")).all())
    assert skipped == {"daily cap of 2 reached": 1, "member opted out of this channel": 1}
    provider.stop()


def test_expiry_reminders_on_seed_001_schedule(factory):
    from jifen.notify.reminders import call_list, send_reminders

    configure(factory, {"pending_days": {}, "expiry": {"policy": "rolling", "months": 12}})
    add_members(factory, "alice", "bob")
    led = Ledger(factory, now=NOW)
    led.run(lambda sc, s: ops.award(sc, m(sc, "alice"), 1520))
    led.run(lambda sc, s: ops.award(sc, m(sc, "bob"), 9000))
    expiry = NOW + dt.timedelta(days=365)  # rolling 12 months

    def remind(now):
        return run_in_transaction(factory, lambda s: send_reminders(s, get_program(s, "default"), now))

    assert remind(expiry - dt.timedelta(days=100)) == 0  # more than three months ahead
    assert remind(expiry - dt.timedelta(days=80)) == 2  # the three-month reminder, in-app
    assert remind(expiry - dt.timedelta(days=70)) == 0  # sent once
    assert remind(expiry - dt.timedelta(days=20)) == 2  # the one-month reminder
    with factory() as s:
        msgs = [(x.member_pk, x.payload["stage"], x.payload.get("reward", {}).get("name"))
                for x in s.scalars(select(OutboxMessage).where(OutboxMessage.topic == "points.expiring")
                                   .order_by(OutboxMessage.id))]
        program = get_program(s, "default")
        calls = call_list(s, program, expiry - dt.timedelta(days=20))
    alice, bob = led.member("alice").id, led.member("bob").id
    # 1,520 points buy the ¥5 coupon; 9,000 buy the ¥89 oven (seed 001's example).
    assert msgs == [(alice, "3m", "滿50減5 優惠券"), (bob, "3m", "電烤箱"), (alice, "1m", "滿50減5 優惠券"),
                    (bob, "1m", "電烤箱")]
    assert [(c["member_id"], c["expiring"]) for c in calls] == [("bob", 9000)]  # over 5,000: a human call
    dispatcher.run_once(factory, expiry - dt.timedelta(days=20))
    with factory() as s:
        (latest, *_) = service.inbox(s, get_member(s, get_program(s, "default"), "bob"), False, 10)
    assert "可兑换价值89元的電烤箱" in latest.body and "9000分" in latest.body


def test_webhook_and_inbox_api(app, factory):
    from fastapi.testclient import TestClient

    from tests.conftest import api_key

    configure(factory, {"pending_days": {}})
    add_members(factory, "alice")
    receiver = HttpReceiver().start()
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        bad = client.post("/v1/webhooks", json={"url": "ftp://x.example/hook", "topics": ["*"]}, headers=admin)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_url"
        r = client.post("/v1/webhooks", json={"url": receiver.url, "topics": ["*"]}, headers=admin)
        assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
        sub = r.json()
        assert "secret" not in client.get("/v1/webhooks", headers=admin).json()[0]
        pos = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        assert client.get("/v1/webhooks", headers=pos).status_code == 403
        send_one(factory, "alice", amount=1200, order_id="A", now=NOW)
        dispatcher.run_once(factory, NOW)
        log = client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=admin).json()
        assert {d["status"] for d in log} == {"delivered"} and len(log) == 2  # points.awarded, tier.changed
        topics = sorted(json.loads(body)["type"] for _, body in receiver.received)
        assert topics == ["points.awarded", "tier.changed"]
        inbox = client.get("/v1/members/alice/inbox", headers=admin).json()
        assert inbox["unread"] == 1 and inbox["items"][0]["title"] == "会员等级变更"
        item = inbox["items"][0]["id"]
        read = client.post(f"/v1/members/alice/inbox/{item}/read", headers=admin)
        assert read.status_code == 200 and read.json()["read_at"]
        assert client.get("/v1/members/alice/inbox?unread=true", headers=admin).json()["items"] == []
        assert client.post("/v1/members/alice/inbox/999/read", headers=admin).status_code == 404
        opt = client.put("/v1/members/alice/opt-outs", json={"channels": ["sms", "email"]}, headers=admin)
        assert opt.json() == {"channels": ["email", "sms"]}
        wrong = client.put("/v1/members/alice/opt-outs", json={"channels": ["fax"]}, headers=admin)
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "unknown_channel"
        rotated = client.post(f"/v1/webhooks/{sub['id']}/rotate", json={"grace_hours": 1}, headers=admin).json()
        assert rotated["secret"] != sub["secret"] and rotated["previous_valid_until"]
        assert client.post("/v1/deliveries/1/replay", headers=admin).json()["error"]["code"] == "not_dead"
        assert client.delete(f"/v1/webhooks/{sub['id']}", headers=admin).json()["active"] is False
    receiver.stop()


def test_redemption_status_reaches_the_inbox_in_the_members_language(factory):
    configure(factory, {"pending_days": {}})
    add_members(factory, "alice", "bob")
    run_in_transaction(factory, lambda s: setattr(get_member(s, get_program(s, "default"), "bob"), "attributes",
                                                  {"lang": "en"}))
    led = Ledger(factory, now=NOW)
    for who in ("alice", "bob"):
        led.run(lambda sc, s, who=who: ops.award(sc, m(sc, who), 1000))
        first = led.run(lambda sc, s, who=who: ops.hold(sc, m(sc, who), 300, reference="滿30減3 優惠券").id)
        led.run(lambda sc, s, h=first: ops.capture(sc, h))
        second = led.run(lambda sc, s, who=who: ops.hold(sc, m(sc, who), 500, reference="保溫杯").id)
        led.run(lambda sc, s, h=second: ops.release(sc, h))
    dispatcher.run_once(factory, NOW)
    with factory() as s:
        program = get_program(s, "default")
        alice = [i.body for i in reversed(service.inbox(s, get_member(s, program, "alice"), False, 10))]
        bob = [i.title for i in reversed(service.inbox(s, get_member(s, program, "bob"), False, 10))]
    assert alice == ["已为您的兑换预留300分 (滿30減3 優惠券)。", "您已使用300分 (滿30減3 優惠券)。",
                     "已为您的兑换预留500分 (保溫杯)。", "您的兑换已取消 (保溫杯),500分已退回您的账户。"]
    assert bob == ["Redemption in progress", "Points used", "Redemption in progress", "Redemption cancelled"]


def test_dispatchers_running_at_once_share_the_work_on_postgresql(pg_only_url):
    import threading

    from jifen.db import make_engine, make_sessionmaker

    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}})
    members = [f"m{i}" for i in range(8)]
    add_members(factory, *members)
    receiver = HttpReceiver().start()
    secret = run_in_transaction(factory, lambda s: service.subscribe(
        s, get_program(s, "default").id, receiver.url, ["*"], NOW)).secret
    for n in range(40):
        send_one(factory, members[n % 8], amount=10 + n, order_id=f"O{n}", at=NOW + n * MINUTE / 10,
                 now=NOW + 10 * MINUTE)
    errors = []

    def work():
        try:
            for _ in range(20):
                dispatcher.run_once(factory, NOW + 10 * MINUTE)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    receiver.stop()
    engine.dispose()
    assert errors == []
    got = verified(receiver, secret)
    ids = Counter(g["id"] for g in got)
    assert len(ids) == 40 and max(ids.values()) == 1  # all delivered, none twice (no crash, no double claim)
    for member in members:  # and each member's in the order the points were awarded
        points = [g["data"]["points"] for g in got if g["data"]["member_id"] == member]
        assert points == sorted(points)


def test_console_notifications_page_and_replay(factory, app):
    from fastapi.testclient import TestClient

    from jifen.notify.models import WebhookSubscription
    from tests.support.console_login import console_as

    configure(factory, {"pending_days": {}})
    add_members(factory, "alice")
    receiver = HttpReceiver()  # never started: every attempt fails
    run_in_transaction(factory, lambda s: service.subscribe(s, get_program(s, "default").id, receiver.url,
                                                            ["points.awarded"], NOW))
    send_one(factory, "alice", amount=50, order_id="A", now=NOW)
    settings = Settings(webhook_max_attempts=1)
    dispatcher.run_once(factory, NOW, settings)
    with factory() as s:
        (dead,) = s.scalars(select(Delivery).where(Delivery.status == "dead")).all()
        assert s.scalar(select(func.count()).select_from(WebhookSubscription)) == 1
    with keyed(TestClient(app)) as client:
        token = console_as(client, app, "operator")
        page = client.get("/console/notifications").text
        assert f"jd_{dead.id}" in page and "points.awarded" in page and receiver.url in page
        r = client.post("/console/notifications/replay", data={"delivery_id": dead.id, "csrf": token},
                        follow_redirects=False)
        assert r.status_code == 303
    with factory() as s:
        assert s.get(Delivery, dead.id).status == "pending"


def test_a_webhook_subscription_is_a_keyed_write_whose_secret_is_not_stored_twice(app, factory):
    from fastapi.testclient import TestClient

    from jifen.idempotency import IdempotencyRecord
    from jifen.notify.models import WebhookSubscription
    from tests.conftest import api_key

    with TestClient(app) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        body = {"url": "https://crm.example.com/hook", "topics": ["*"]}
        missing = client.post("/v1/webhooks", json=body, headers=admin)
        assert (missing.status_code, missing.json()["error"]["code"]) == (400, "idempotency_key_required")
        first = client.post("/v1/webhooks", json=body, headers=admin | {"Idempotency-Key": "hook-1"})
        again = client.post("/v1/webhooks", json=body, headers=admin | {"Idempotency-Key": "hook-1"})
        assert first.status_code == again.status_code == 201 and again.json() == first.json()
        assert (first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"]) == ("false", "true")
        other = client.post("/v1/webhooks", json=body | {"topics": ["points.awarded"]},
                            headers=admin | {"Idempotency-Key": "hook-1"})
        assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(WebhookSubscription)) == 1
        stored = s.scalars(select(IdempotencyRecord.response)).all()
    assert stored == [first.json()["id"]]  # the id, not the signing secret
