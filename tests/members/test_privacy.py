"""Privacy (PIPL / GDPR): birthdays and delivery addresses encrypted at rest with a keyed address hash,
consent per purpose (and marketing that respects it), the member's data export, erasure that keeps the
ledger whole, retention of logs, and no personal data in clear in a PostgreSQL dump."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from jifen.config import Settings, get_settings
from jifen.db import run_in_transaction, utcnow
from jifen.events.models import Event
from jifen.idempotency import IdempotencyRecord
from jifen.ledger import operations as ops
from jifen.ledger.models import Account, JournalEntry
from jifen.mall.models import Redemption
from jifen.members import privacy, retention
from jifen.members.models import Consent, Member, RetentionRun
from jifen.members.service import get_member
from jifen.notify import dispatcher
from jifen.notify.models import Delivery, ExpiryReminder, InboxItem
from jifen.outbox import OutboxMessage, emit
from jifen.programs.service import get_program
from jifen.risk.models import MemberDevice
from jifen.security import pii
from tests.conftest import Ledger, api_key, keyed, m
from tests.support.intake import configure
from tests.test_cli import JIFEN

ALICE = {"member_id": "alice", "name": "歐陽小紅", "phone": "13912345678", "email": "xiaohong@example.com",
         "birthday": "1988-07-14"}
ADDRESS = {"name": "歐陽小紅", "phone": "13912345678", "province": "廣東省", "city": "深圳市",
           "district": "南山區", "detail": "科技園南路88號3棟1201"}
_keys = iter(range(10**9))


def post(client, headers, path, body=None):
    return client.post(path, json=body, headers=headers | {"Idempotency-Key": f"p{next(_keys)}"})


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def world(app, factory):
    """A programme with alice (personal data, 10 000 points) and bob, a kettle and a coupon in the mall."""
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    with keyed(TestClient(app)) as client:
        admin = bearer(api_key(app, "admin"))
        assert post(client, admin, "/v1/members", ALICE).status_code == 201
        assert post(client, admin, "/v1/members", {"member_id": "bob", "phone": "13700001111"}).status_code == 201
        for body in ({"code": "kettle", "name": "電熱水壺", "kind": "physical", "category": "實物", "points": 3000},
                     {"code": "c50", "name": "滿50減5", "kind": "coupon", "category": "優惠券", "points": 500,
                      "coupon": {"threshold": 50, "discount": 5, "valid_days": 30}}):
            assert client.post("/v1/rewards", json=body, headers=admin).status_code == 201
        assert post(client, admin, "/v1/points/award", {"member_id": "alice", "points": 10_000}).status_code == 200
        assert post(client, admin, "/v1/points/award", {"member_id": "bob", "points": 700}).status_code == 200
        yield client, admin


def raw(factory, sql: str, **params):
    with factory() as s:
        return s.execute(text(sql), params).all()


# ---- 1. more fields encrypted at rest ----------------------------------------------------------------

def test_birthday_and_address_encrypted_hashed_and_old_plain_rows_still_read(world, factory):
    client, admin = world
    order = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle", "address": ADDRESS})
    assert order.status_code == 201, order.text
    [(birthday,)] = raw(factory, "SELECT birthday FROM members WHERE member_id = 'alice'")
    [(address, digest)] = raw(factory, "SELECT address, address_hash FROM redemptions")
    assert birthday.startswith("enc:t1:") and address.startswith("enc:t1:")
    alice = Ledger(factory).member("alice")
    assert alice.birthday == dt.date(1988, 7, 14)  # a date in Python: the rules engine reads birthday.month
    with factory() as s:
        assert s.scalar(select(Redemption.address)) == ADDRESS
    # The same place written otherwise (spaces, case, full-width digits, one line) hashes alike; another does not.
    assert digest == pii.address_lookup({"province": "廣東省 ", "city": "深圳市", "district": "南山區",
                                         "street": "", "detail": "科技園南路８８號 3棟 1201", "name": "someone else"})
    assert digest == pii.address_lookup({"line": "廣東省深圳市南山區科技園南路88號3棟1201"})
    assert digest != pii.address_lookup(ADDRESS | {"detail": "科技園南路88號3棟1202"})
    assert pii.address_lookup({"Line": "1 Main St"}) == pii.address_lookup({"line": "1 main st."})
    assert pii.address_lookup({"pooled": 3}) is None and pii.address_lookup({}) is None
    # Rows written before the columns were encrypted read as they are.
    with factory.begin() as s:
        s.execute(text("UPDATE members SET birthday = '1970-01-02' WHERE member_id = 'bob'"))
        s.execute(text("UPDATE redemptions SET address = :a"), {"a": json.dumps({"line": "舊地址 1 號"})})
    assert Ledger(factory).member("bob").birthday == dt.date(1970, 1, 2)
    with factory() as s:
        assert s.scalar(select(Redemption.address)) == {"line": "舊地址 1 號"}


def test_rotation_re_encrypts_birthdays_addresses_and_stored_responses(world, factory, monkeypatch):
    client, admin = world
    post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle", "address": ADDRESS})
    sm4 = base64.b64encode(os.urandom(16)).decode()
    monkeypatch.setenv("JIFEN_DATA_KEYS", f"k2:sm4:{sm4},{os.environ['JIFEN_DATA_KEYS']}")
    get_settings.cache_clear()
    pii.keyring.cache_clear()
    try:
        counts = run_in_transaction(factory, privacy.rotate_keys)
        assert counts["members"] == 2 and counts["redemptions"] == 1 and counts["idempotency_records"] >= 5
        for sql in ("SELECT birthday FROM members WHERE member_id = 'alice'", "SELECT address FROM redemptions",
                    "SELECT response FROM idempotency_records WHERE response IS NOT NULL"):
            assert all(v.startswith("enc:k2:") for (v,) in raw(factory, sql)), sql
        assert Ledger(factory).member("alice").birthday == dt.date(1988, 7, 14)
        with factory() as s:
            assert s.scalar(select(Redemption.address)) == ADDRESS
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        pii.keyring.cache_clear()


def test_the_idempotency_record_of_a_member_keeps_no_personal_data(app, factory):
    with keyed(TestClient(app)) as client:
        admin = bearer(api_key(app, "admin"))
        headers = admin | {"Idempotency-Key": "reg-1"}
        first = client.post("/v1/members", json=ALICE, headers=headers)
        again = client.post("/v1/members", json=ALICE, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert first.json()["phone"] == ALICE["phone"] and again.headers["Idempotent-Replayed"] == "true"
    [(stored,)] = raw(factory, "SELECT response FROM idempotency_records")
    assert stored.startswith("enc:") and json.loads(pii.decrypt(stored)) == {"member_id": "alice"}


# ---- 2. consents ----------------------------------------------------------------------------------------

def test_consents_by_member_token_and_by_key_append_only(world, app, factory):
    client, admin = world
    token = bearer(client.post("/v1/members/alice/token", headers=admin).json()["token"])
    body = {"decisions": [{"purpose": "marketing_sms", "granted": True}, {"purpose": "profiling", "granted": True}],
            "policy_version": "2026-01"}
    mine = post(client, token, "/v1/members/alice/consents", body)
    assert mine.status_code == 201, mine.text
    later = post(client, bearer(api_key(app, "customer_service")), "/v1/members/alice/consents",
                 {"decisions": [{"purpose": "marketing_sms", "granted": False}], "policy_version": "2026-02",
                  "source": "console"})
    assert later.status_code == 201
    state = client.get("/v1/members/alice/consents", headers=token).json()
    current = {p["purpose"]: p["granted"] for p in state["purposes"]}
    assert current == {"marketing_sms": False, "marketing_email": False, "marketing_wechat": False,
                       "marketing_inapp": False, "profiling": True, "partner_sharing": False}
    assert [(h["purpose"], h["granted"], h["source"]) for h in state["history"]] == [
        ("marketing_sms", False, "console"), ("profiling", True, "app"), ("marketing_sms", True, "app")]
    # Refusals: unknown purpose or source, a purpose twice, no key, another member, a role without the right.
    before = raw(factory, "SELECT count(*) FROM consents")
    for bad, code in (({"decisions": [{"purpose": "telemarketing", "granted": True}], "policy_version": "1"},
                       "unknown_purpose"),
                      ({"decisions": [{"purpose": "profiling", "granted": True}], "policy_version": "1",
                        "source": "carrier_pigeon"}, "unknown_source"),
                      ({"decisions": [{"purpose": "profiling", "granted": True}] * 2, "policy_version": "1"},
                       "duplicate_purpose")):
        r = post(client, admin, "/v1/members/alice/consents", bad)
        assert (r.status_code, r.json()["error"]["code"]) == (422, code)
    assert TestClient(app).post("/v1/members/alice/consents", json=body, headers=admin).json()["error"]["code"] == \
        "idempotency_key_required"
    assert post(client, token, "/v1/members/bob/consents", body).status_code == 403
    assert client.get("/v1/members/bob/consents", headers=token).status_code == 403
    assert post(client, bearer(api_key(app, "auditor")), "/v1/members/alice/consents", body).status_code == 403
    assert raw(factory, "SELECT count(*) FROM consents") == before
    with factory() as s:
        assert s.scalar(select(Consent.actor).order_by(Consent.id).limit(1)) == "member"  # not the brand's id


def _marketing_to(factory, *member_ids):
    def tx(s):
        program = get_program(s, "default")
        for mid in member_ids:
            member = m(ops.Scope(s, program, None, utcnow()), mid)
            emit(s, program.id, "marketing.message", {"title": "雙11", "body": "全場雙倍積分"}, member.id)
            emit(s, program.id, "points.expired", {"points": 10}, member.id)  # transactional

    run_in_transaction(factory, tx)


def test_marketing_needs_consent_per_channel_transactional_does_not(world, factory):
    client, admin = world
    post(client, admin, "/v1/members/alice/consents", {"policy_version": "1", "decisions": [
        {"purpose": "marketing_sms", "granted": True}, {"purpose": "marketing_inapp", "granted": True}]})
    post(client, admin, "/v1/members/alice/consents", {"policy_version": "1", "decisions": [
        {"purpose": "marketing_inapp", "granted": False}]})  # withdrawn: acts as an opt-out
    dispatcher.fan_out(factory, utcnow())  # what the set-up emitted
    with factory.begin() as s:
        s.execute(text("DELETE FROM deliveries"))
    _marketing_to(factory, "alice", "bob")
    settings = Settings(sms_url="http://127.0.0.1:9/sms", smtp_url="smtp://127.0.0.1:9", quiet_hours=(0, 0))
    dispatcher.fan_out(factory, utcnow(), settings=settings)
    with factory() as s:
        rows = s.execute(select(Member.member_id, OutboxMessage.topic, Delivery.channel, Delivery.status,
                                Delivery.last_error).join(OutboxMessage, OutboxMessage.id == Delivery.message_id)
                         .join(Member, Member.id == OutboxMessage.member_pk)).all()
    got = {(mid, topic, ch): (status, err) for mid, topic, ch, status, err in rows}
    assert got[("alice", "marketing.message", "sms")] == ("pending", None)
    assert got[("alice", "marketing.message", "inapp")] == ("skipped", "no marketing_inapp consent")
    assert got[("alice", "marketing.message", "email")] == ("skipped", "no marketing_email consent")
    assert got[("bob", "marketing.message", "sms")] == ("skipped", "no marketing_sms consent")  # never asked
    assert got[("alice", "points.expired", "inapp")][0] == "pending"  # transactional: consent not needed
    assert got[("bob", "points.expired", "inapp")][0] == "pending"


# ---- 3. export ------------------------------------------------------------------------------------------

def test_export_by_the_member_and_by_pii_roles_only(world, app, factory, tmp_path):
    client, admin = world
    post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle", "address": ADDRESS})
    post(client, admin, "/v1/members/alice/consents", {"policy_version": "1", "decisions": [
        {"purpose": "profiling", "granted": True}]})
    post(client, admin, "/v1/events", {"event_id": "e1", "member_id": "alice", "type": "purchase",
                                       "amount": "100", "occurred_at": utcnow().isoformat()})
    token = bearer(client.post("/v1/members/alice/token", headers=admin).json()["token"])
    doc = client.get("/v1/members/alice/export", headers=token).json()
    assert {k: doc["profile"][k] for k in ALICE} == ALICE
    assert doc["redemptions"][0]["address"] == ADDRESS and doc["redemptions"][0]["reward"] == "kettle"
    purchase = next(e for e in doc["events"] if e["event_id"] == "e1")
    assert purchase["points"] > 0 and purchase["amount"] == "100.00"
    assert [b["available"] for b in doc["balances"] if b["wallet"] == "points"] == [7000 + purchase["points"]]
    assert {e["type"] for e in doc["ledger"]} >= {"award", "hold"}
    assert {p["purpose"]: p["granted"] for p in doc["consents"]["purposes"]}["profiling"] is True
    assert set(doc) >= {"tier", "coupons", "friends", "referrals", "badges", "tasks", "inbox"}
    service = client.get("/v1/members/alice/export", headers=bearer(api_key(app, "customer_service")))
    assert service.status_code == 200 and service.json()["profile"]["phone"] == ALICE["phone"]
    for role in ("operator", "pos", "auditor", "finance"):
        assert client.get("/v1/members/alice/export", headers=bearer(api_key(app, role))).status_code == 403
    assert client.get("/v1/members/bob/export", headers=token).status_code == 403
    out = tmp_path / "alice.json"
    done = subprocess.run(JIFEN + ["member", "export", "alice", "--out", str(out)], capture_output=True, text=True,
                          env=os.environ | {"JIFEN_DATABASE_URL": _url(factory)})
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["profile"]["email"] == ALICE["email"]
    missing = subprocess.run(JIFEN + ["member", "export", "nobody"], capture_output=True, text=True,
                             env=os.environ | {"JIFEN_DATABASE_URL": _url(factory)})
    assert missing.returncode == 1 and missing.stderr.strip() == "error: unknown member 'nobody'"


def _url(factory) -> str:
    return factory.kw["bind"].url.render_as_string(hide_password=False)


# ---- 4. erasure -----------------------------------------------------------------------------------------

def _books(factory) -> dict:
    """Totals the erasure must keep: every account's balance (system ones included), entries, issuance."""
    with factory() as s:
        return {"sum": s.scalar(select(func.sum(Account.balance))),
                "issued": s.scalar(select(func.sum(JournalEntry.points)).where(JournalEntry.type == "award")),
                "entries": s.scalar(select(func.count()).select_from(JournalEntry))}


def test_erasure_anonymises_keeps_the_ledger_and_refuses_later_writes(world, app, factory):
    client, admin = world
    post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "c50"})  # fulfilled at once
    order = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle", "address": ADDRESS})
    post(client, admin, "/v1/members/alice/consents", {"policy_version": "1", "decisions": [
        {"purpose": "marketing_sms", "granted": True}]})
    assert client.post("/v1/members/alice/friends", json={"friend_id": "bob"}, headers=admin).status_code == 201
    dispatcher.run_once(factory, utcnow())  # inbox messages for alice
    run_in_transaction(factory, lambda s: s.add(MemberDevice(  # risk control saw her phone and IP address
        program_id=get_program(s, "default").id, kind="ip", value="203.0.113.9",
        member_pk=get_member(s, get_program(s, "default"), "alice").id)))
    service = bearer(api_key(app, "customer_service"))
    held = post(client, service, "/v1/members/alice/erase")
    assert (held.status_code, held.json()["error"]["code"]) == (409, "points_held")  # the kettle order is open
    assert raw(factory, "SELECT name FROM members WHERE member_id = 'alice'")[0][0].startswith("enc:")
    assert post(client, admin, f"/v1/redemptions/{order.json()['id']}/fulfil").status_code == 200
    assert Ledger(factory).verify() == []
    before, bob_before = _books(factory), Ledger(factory).balances("bob")
    alice_available = Ledger(factory).balances("alice")["available"]
    assert post(client, bearer(api_key(app, "operator")), "/v1/members/alice/erase").status_code == 403
    key = service | {"Idempotency-Key": "erase-alice"}
    done = client.post("/v1/members/alice/erase", headers=key)
    assert done.status_code == 200, done.text
    placeholder = done.json()["member_id"]
    assert placeholder.startswith("erased-") and done.json()["forfeited_points"] == {"points": alice_available}
    # The ledger: whole, every total unchanged, one forfeit entry more; bob untouched.
    assert Ledger(factory).verify() == []
    after = _books(factory)
    assert after == before | {"entries": before["entries"] + 1}
    assert Ledger(factory).balances("bob") == bob_before
    assert raw(factory, "SELECT sum(abs(balance)) FROM accounts JOIN members ON members.id = accounts.member_pk "
                        "WHERE members.member_id = :p", p=placeholder) == [(0,)]
    # Personal data gone; consents kept as evidence, with the withdrawals; inbox and friendships gone.
    [row] = raw(factory, "SELECT name, phone, phone_hash, email, birthday, attributes, erased_at FROM members "
                         "WHERE member_id = :p", p=placeholder)
    assert row[:5] == (None,) * 5 and row[5] in ({}, "{}") and row[6] is not None
    with factory() as s:
        addresses = [(r.address, r.address_hash) for r in s.scalars(select(Redemption).order_by(Redemption.id))]
        pk = s.scalar(select(Member.id).where(Member.member_id == placeholder))
        assert s.scalar(select(func.count()).select_from(InboxItem).where(InboxItem.member_pk == pk)) == 0
        assert s.scalar(select(func.count()).select_from(MemberDevice).where(MemberDevice.member_pk == pk)) == 0
        history = [(c.purpose, c.granted, c.source) for c in s.scalars(select(Consent).where(Consent.member_pk == pk)
                                                                       .order_by(Consent.id))]
    assert addresses == [({}, None), ({"erased": True}, None)]
    assert history == [("marketing_sms", True, "api"), ("marketing_sms", False, "erasure")]
    assert client.get("/v1/members/bob/friends", headers=admin).json()["friends"] == []
    # The brand's id no longer resolves; the placeholder is refused for writes; erasing again is harmless.
    assert client.get("/v1/members/alice", headers=admin).status_code == 404
    award = post(client, admin, "/v1/points/award", {"member_id": placeholder, "points": 5})
    assert (award.status_code, award.json()["error"]["code"]) == (409, "member_erased")
    check_in = post(client, admin, "/v1/events", {"event_id": "after-erasure", "member_id": placeholder,
                                                  "type": "check_in", "occurred_at": utcnow().isoformat()})
    assert (check_in.status_code, check_in.json()["error"]["code"]) == (409, "member_erased")
    assert post(client, admin, "/v1/points/award", {"member_id": "alice", "points": 5}).status_code == 404
    replay = client.post("/v1/members/alice/erase", headers=key)
    assert replay.json() == done.json() and replay.headers["Idempotent-Replayed"] == "true"
    again = post(client, service, f"/v1/members/{placeholder}/erase")
    assert again.status_code == 200 and again.json()["already_erased"] is True
    assert _books(factory) == after
    # The brand may register a new member under the freed id.
    assert post(client, admin, "/v1/members", {"member_id": "alice"}).status_code == 201


def test_cli_erase_needs_yes_and_forfeits_pending_points(world, factory):
    client, admin = world
    soon = (utcnow() + dt.timedelta(days=7)).isoformat()
    post(client, admin, "/v1/points/award", {"member_id": "bob", "points": 50, "pending_until": soon})
    env = os.environ | {"JIFEN_DATABASE_URL": _url(factory)}
    refused = subprocess.run(JIFEN + ["member", "erase", "bob"], capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "--yes" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert Ledger(factory).member("bob").erased_at is None
    done = subprocess.run(JIFEN + ["member", "erase", "bob", "--yes"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "points: 750" in done.stdout  # 700 available + 50 pending
    assert Ledger(factory).verify() == []
    with factory() as s:
        bob = s.scalar(select(Member).where(Member.member_id.like("erased-%")))
        assert bob.phone is None and bob.phone_hash is None
        assert s.scalar(select(func.sum(Account.balance)).where(Account.member_pk == bob.id)) == 0
    again = subprocess.run(JIFEN + ["member", "erase", "bob", "--yes"], capture_output=True, text=True, env=env)
    assert again.returncode == 1 and again.stderr.strip() == "error: unknown member 'bob'"


# ---- 5. retention -----------------------------------------------------------------------------------------

def test_purge_by_age_never_evidence_under_three_years(world, factory, monkeypatch):
    client, admin = world
    now = utcnow()
    post(client, admin, "/v1/events", {"event_id": "new", "member_id": "alice", "type": "purchase", "amount": "10",
                                       "occurred_at": now.isoformat()})
    for _ in range(2):
        post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "c50"})  # in-app messages
    dispatcher.run_once(factory, now)
    alice = Ledger(factory).member("alice")
    old, older = now - dt.timedelta(days=200), now - dt.timedelta(days=1200)
    with factory.begin() as s:
        delivered = list(s.scalars(select(Delivery.message_id).where(Delivery.channel == "inapp")
                                   .order_by(Delivery.message_id)))
        assert len(delivered) >= 4
        aged, kept = delivered[:3], delivered[0]
        s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(aged)).values(created_at=old))
        s.execute(update(Delivery).where(Delivery.message_id.in_(aged)).values(created_at=old))
        # One old delivery still pending: kept, and so is its message.
        s.execute(update(Delivery).where(Delivery.message_id == kept).values(status="pending"))
        first = list(s.scalars(select(IdempotencyRecord.id).order_by(IdempotencyRecord.id).limit(3)))
        s.execute(update(IdempotencyRecord).where(IdempotencyRecord.id.in_(first))
                  .values(created_at=now - dt.timedelta(days=31)))
        s.add_all([ExpiryReminder(member_pk=alice.id, expires_on=(now - dt.timedelta(days=400)).date(), stage="3m",
                                  points=1, created_at=now),
                   ExpiryReminder(member_pk=alice.id, expires_on=(now + dt.timedelta(days=30)).date(), stage="1m",
                                  points=1, created_at=now)])
        inbox = list(s.scalars(select(InboxItem.id).where(InboxItem.member_pk == alice.id).order_by(InboxItem.id)))
        s.execute(update(InboxItem).where(InboxItem.id.in_(inbox[:2])).values(created_at=now - dt.timedelta(days=400)))
        new = s.scalar(select(Event).where(Event.event_id == "new"))
        s.add(Event(program_id=new.program_id, event_id="ancient", request_hash=new.request_hash, member_pk=alice.id,
                    type="purchase", occurred_at=older, received_at=older, data={}, result={}))
    want = {"deliveries": 2, "outbox_messages": 2, "idempotency_records": 3, "expiry_reminders": 1, "inbox_items": 2}
    ledger_before = _books(factory)
    dry = retention.purge(factory, now, dry_run=True)
    assert dry == want and raw(factory, "SELECT count(*) FROM retention_runs")[0][0] == 0
    # Evidence: refused under three years (and nothing deleted); kept for ever by default.
    short = Settings(retention_evidence_days=1000)
    with pytest.raises(Exception, match="1095") as refused:
        retention.purge(factory, now, settings=short)
    assert getattr(refused.value, "code", None) == "retention_too_short"
    assert retention.purge(factory, now, dry_run=True) == want
    done = retention.purge(factory, now, settings=Settings(retention_evidence_days=1100))
    assert done == want | {"events": 1}
    assert raw(factory, "SELECT event_id FROM events ORDER BY id") == [("new",), ("redeem:1",), ("redeem:2",)]
    assert retention.purge(factory, now, dry_run=True) == dict.fromkeys(want, 0)
    assert _books(factory) == ledger_before and Ledger(factory).verify() == []
    # Daily in the job runner: once a day.
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(RetentionRun)) == 1
    assert retention.purge_if_due(factory, now + dt.timedelta(hours=23)) is None
    assert retention.purge_if_due(factory, now + dt.timedelta(days=1)) is not None
    env = os.environ | {"JIFEN_DATABASE_URL": _url(factory), "JIFEN_RETENTION_EVIDENCE_DAYS": "30"}
    cli = subprocess.run(JIFEN + ["privacy", "purge", "--dry-run"], capture_output=True, text=True, env=env)
    assert cli.returncode == 1 and "under the 1095 days" in cli.stderr and len(cli.stderr.strip().splitlines()) == 1
    env.pop("JIFEN_RETENTION_EVIDENCE_DAYS")
    cli = subprocess.run(JIFEN + ["privacy", "purge", "--dry-run"], capture_output=True, text=True,
                         env=env | {"COLUMNS": "200"})
    assert cli.returncode == 0 and "idempotency_records" in cli.stdout, cli.stderr


# ---- 6. no personal data in clear in a PostgreSQL dump ------------------------------------------------------

def test_no_plaintext_personal_data_in_a_pg_dump(pg_only_url, tmp_path):
    from jifen.api import create_app
    from jifen.db import make_engine

    env = os.environ | {"JIFEN_DATABASE_URL": pg_only_url}
    demo = subprocess.run(JIFEN + ["demo", "--members", "30", "--days", "20"], capture_output=True, text=True, env=env)
    assert demo.returncode == 0, demo.stderr
    app = create_app(pg_only_url)
    factory = app.state.sessions
    try:
        with keyed(TestClient(app)) as client:
            admin = bearer(api_key(app, "admin"))
            assert post(client, admin, "/v1/members", ALICE | {"attributes": {"lang": "zh"}}).status_code == 201
            post(client, admin, "/v1/points/award", {"member_id": "alice", "points": 9000})
            client.post("/v1/rewards", json={"code": "kettle9", "name": "水壺", "kind": "physical", "category": "實物",
                                             "points": 3000}, headers=admin)
            r = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle9", "address": ADDRESS})
            assert r.status_code == 201, r.text
            demo_member = client.get("/v1/members/M100001", headers=admin).json()  # seeded by `jifen demo`
            post(client, admin, "/v1/points/award", {"member_id": "M100001", "points": 3000})
            r = post(client, admin, "/v1/redemptions", {"member_id": "M100001", "reward": "kettle9", "address": {
                "name": demo_member["name"], "phone": demo_member["phone"], "line": "浙江省杭州市西湖區文三路478號"}})
            assert r.status_code == 201, r.text
            post(client, admin, "/v1/events", {"event_id": "pg1", "member_id": "alice", "type": "purchase",
                                               "amount": "88", "occurred_at": utcnow().isoformat(),
                                               "attributes": {"store": "S001"}})
            post(client, admin, "/v1/members/alice/consents", {"policy_version": "1", "decisions": [
                {"purpose": "marketing_sms", "granted": True}]})
            token = bearer(client.post("/v1/members/alice/token", headers=admin).json()["token"])
            assert client.get("/v1/members/alice/export", headers=token).status_code == 200
        dispatcher.run_once(factory, utcnow())
        with factory() as s:  # what must not show: every member's data and every address, decrypted
            people = s.scalars(select(Member)).all()
            secrets_ = {v for p in people for v in (p.name, p.phone, p.email) if v}
            secrets_ |= {p.birthday.isoformat() for p in people if p.birthday}
            secrets_ |= {r.address["line"] for r in s.scalars(select(Redemption)) if "line" in r.address}
            secrets_ |= {ADDRESS["detail"], ALICE["phone"], ALICE["name"]}
    finally:
        app.state.engine.dispose()
    assert len(people) >= 30 and "浙江省杭州市西湖區文三路478號" in secrets_
    dump = tmp_path / "dump.sql"
    url = make_engine(pg_only_url).url
    done = subprocess.run(["pg_dump", "--data-only", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                           "-U", url.username or "postgres", "-f", str(dump), url.database], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data = dump.read_text(encoding="utf-8")
    assert "enc:t1:" in data and "M100001" in data  # the dump has the rows, encrypted
    undashed = data.replace("-", "")
    leaked = sorted(v for v in secrets_ if v in data or v.replace("-", "") in undashed)
    assert leaked == []


# ---- the migration: rows written before 0008 stay readable, and a downgrade gives them back in clear ---------

@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/mig.db"
        return
    import psycopg

    from tests.conftest import PG_ADMIN_URL, _pg_dsn, _pg_reachable

    if _pg_reachable():
        pytest.skip("PostgreSQL unreachable")
    name = f"jifen_mig_{os.urandom(5).hex()}"
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert(conn, table: str, **values) -> int:
    """A row at an old revision, by plain SQL: the columns not given get a value of their type."""
    import sqlalchemy as sa

    for c in sa.inspect(conn).get_columns(table):
        if c["name"] in values or c["nullable"] or c.get("autoincrement") is True or c["name"] == "id":
            continue
        kind = type(c["type"]).__name__.upper()
        values[c["name"]] = (False if "BOOL" in kind else 0 if "INT" in kind or "NUMERIC" in kind else
                             "{}" if "JSON" in kind else utcnow() if "TIME" in kind else "x")
    names = ", ".join(values)
    conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in values)})"), values)
    return conn.execute(text(f"SELECT max(id) FROM {table}")).scalar()


def test_migration_0008_keeps_old_rows_readable_and_downgrades_to_clear(scratch_url):
    from alembic import command

    from jifen.db import make_engine
    from jifen.migrate import alembic_config, upgrade

    upgrade(scratch_url, "0007")
    engine = make_engine(scratch_url)
    try:
        with engine.begin() as conn:  # rows as 0007 stored them: a Date, plain JSON
            program = _insert(conn, "programs", code="default", name="d", timezone="Asia/Shanghai")
            member = _insert(conn, "members", program_id=program, member_id="old", birthday=dt.date(1960, 2, 29),
                             attributes="{}")
            reward = _insert(conn, "rewards", program_id=program, code="r", name="r", kind="physical")
            _insert(conn, "redemptions", program_id=program, member_pk=member, reward_id=reward, status="held",
                    address=json.dumps(ADDRESS, ensure_ascii=False))
        upgrade(scratch_url, "0008")
        reader = pii.EncryptedJSON()
        with engine.begin() as conn:
            birthday, = conn.execute(text("SELECT birthday FROM members")).one()
            address, digest = conn.execute(text("SELECT address, address_hash FROM redemptions")).one()
            assert pii.EncryptedDate().process_result_value(birthday, conn.dialect) == dt.date(1960, 2, 29)
            assert reader.process_result_value(address, conn.dialect) == ADDRESS
            assert digest == pii.address_lookup(ADDRESS)  # hashed by the migration
            conn.execute(text("UPDATE members SET birthday = :b"), {"b": pii.encrypt("1960-02-29")})
            conn.execute(text("UPDATE redemptions SET address = :a"),
                         {"a": reader.process_bind_param(ADDRESS, conn.dialect)})
        command.downgrade(alembic_config(scratch_url), "0007")
        with engine.connect() as conn:  # back in clear, in the old column types
            birthday = conn.execute(text("SELECT birthday FROM members")).scalar()
            address = conn.execute(text("SELECT address FROM redemptions")).scalar()
        assert str(birthday) == "1960-02-29"
        assert (address if isinstance(address, dict) else json.loads(address)) == ADDRESS
    finally:
        engine.dispose()
