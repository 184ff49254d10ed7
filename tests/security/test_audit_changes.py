"""Before/after values in the audit log: what each write changed, in the hash-chained line — personal data
masked, secrets redacted, ledger rows summarised, rolled-back attempts absent."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from jifen.security.audit import AuditEntry, verify
from tests.conftest import api_key, keyed
from tests.support.console_login import console_as

PHONE = "13912345678"


def _lines(factory) -> list[AuditEntry]:
    with factory() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _line(factory, method: str, path: str) -> dict:
    found = [e for e in _lines(factory) if (e.method, e.path) == (method, path)]
    assert len(found) == 1, [(e.method, e.path) for e in _lines(factory)]
    return found[0].detail


def _raw_log(factory) -> str:
    """The audit log as stored (every column, as the database returns it)."""
    with factory() as s:
        return json.dumps([list(row) for row in s.execute(text("SELECT * FROM audit_log")).all()], default=str,
                          ensure_ascii=False)


def test_an_operators_changes_are_logged_with_before_and_after(app, factory):
    operator = {"Authorization": f"Bearer {api_key(app, 'operator')}"}
    with keyed(TestClient(app)) as client:
        def post(path, body, key):
            return client.post(path, json=body, headers=operator | {"Idempotency-Key": key})

        hook = post("/v1/webhooks", {"url": "https://crm.example.com/hook", "topics": ["points.awarded"]}, "w1")
        assert hook.status_code == 201
        secret, sub_id = hook.json()["secret"], hook.json()["id"]
        assert post(f"/v1/webhooks/{sub_id}/rotate", {"grace_hours": 1}, "w2").status_code == 200
        assert client.delete(f"/v1/webhooks/{sub_id}", headers=operator).status_code == 200
        assert post("/v1/rewards", {"code": "kettle", "name": "電熱水壺", "kind": "physical", "category": "家居",
                                    "points": 3000, "stock": 2, "value": "89"}, "r1").status_code == 201

    created = _line(factory, "POST", "/v1/webhooks")["changes"]
    (row,) = [c for c in created if c["table"] == "webhook_subscriptions"]
    assert row["op"] == "insert" and row["id"] == sub_id and row["before"] == {}
    assert row["after"]["url"] == "https://crm.example.com/hook" and row["after"]["topics"] == ["points.awarded"]
    assert row["after"]["secret"] == "[redacted]"

    (rotated,) = [c for c in _line(factory, "POST", f"/v1/webhooks/{sub_id}/rotate")["changes"]
                  if c["table"] == "webhook_subscriptions"]
    assert rotated["op"] == "update" and rotated["before"]["secret"] == rotated["after"]["secret"] == "[redacted]"
    assert rotated["before"]["previous_secret"] is None and rotated["after"]["previous_secret"] == "[redacted]"

    (stopped,) = [c for c in _line(factory, "DELETE", f"/v1/webhooks/{sub_id}")["changes"]
                  if c["table"] == "webhook_subscriptions"]  # (and the key's idempotency record)
    assert stopped == {"table": "webhook_subscriptions", "id": sub_id, "op": "update",
                       "before": {"active": True}, "after": {"active": False}}

    (reward,) = [c for c in _line(factory, "POST", "/v1/rewards")["changes"] if c["table"] == "rewards"]
    assert reward["op"] == "insert" and reward["after"]["name"] == "電熱水壺" and reward["after"]["points"] == 3000
    assert reward["after"]["value"] == "89.00" or reward["after"]["value"].startswith("89")

    assert secret not in _raw_log(factory)
    with factory() as s:
        assert verify(s) == []


def test_a_users_role_change_in_the_console(app, factory):
    with keyed(TestClient(app)) as admin, keyed(TestClient(app)) as staff:
        token = console_as(admin, app, "admin", "boss")
        console_as(staff, app, "operator", "wang")
        with factory() as s:
            wang = s.execute(text("SELECT id FROM console_users WHERE username = 'wang'")).scalar()
        admin.post(f"/console/users/{wang}/role", data={"role": "auditor", "csrf": token})
        admin.post(f"/console/users/{wang}/password", data={"password": "a new password!", "csrf": token})
        admin.post("/console/users", data={"username": "li", "role": "finance", "password": "li's password",
                                           "csrf": token})
    line = [e for e in _lines(factory) if e.path == f"/console/users/{wang}/role"][0]
    assert line.actor.startswith("user:") and line.actor.endswith(":boss") and line.role == "admin"
    assert line.detail["changes"] == [{"table": "console_users", "id": wang, "op": "update",
                                       "before": {"role": "operator"}, "after": {"role": "auditor"}}]
    (reset,) = _line(factory, "POST", f"/console/users/{wang}/password")["changes"]
    assert reset["before"]["password_hash"] == reset["after"]["password_hash"] == "[redacted]"
    assert "password_changed_at" in reset["after"]
    (made,) = _line(factory, "POST", "/console/users")["changes"]
    assert made["after"]["username"] == "li" and made["after"]["role"] == "finance"
    log = _raw_log(factory)
    assert "$argon2" not in log and "a new password!" not in log and "li's password" not in log
    with factory() as s:
        tokens = [row for row in s.execute(text("SELECT token_hash, csrf_token FROM console_sessions")).all()]
    assert tokens and not any(value in log for row in tokens for value in row)  # no session or CSRF tokens
    with factory() as s:
        assert verify(s) == []


def test_personal_data_is_masked_and_the_ledger_summarised(app, factory):
    admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
    with keyed(TestClient(app)) as client:
        made = client.post("/v1/members", json={"member_id": "alice", "name": "王小明", "phone": PHONE,
                                                "email": "alice@example.com"}, headers=admin | {"Idempotency-Key": "m1"})
        assert made.status_code == 201
        for i in range(3):
            assert client.post("/v1/points/award", json={"member_id": "alice", "points": 10},
                               headers=admin | {"Idempotency-Key": f"a{i}"}).status_code == 200
        refused = client.post("/v1/points/spend", json={"member_id": "alice", "points": 500},
                              headers=admin | {"Idempotency-Key": "s1"})
        assert refused.status_code == 409

    (member,) = [c for c in _line(factory, "POST", "/v1/members")["changes"] if c["table"] == "members"]
    assert member["after"]["phone"] == "139****5678" and member["after"]["name"] == "王**"
    assert member["after"]["email"] == "a***@example.com" and member["after"]["phone_hash"] == "[redacted]"
    assert member["after"]["member_id"] == "alice"

    awards = [e.detail["changes"] for e in _lines(factory) if e.path == "/v1/points/award"]
    assert len(awards) == 3
    for changes in awards:
        tables = {c["table"]: c for c in changes}
        assert tables["journal_entries"]["op"] == "insert" and tables["journal_entries"]["count"] == 1
        assert len(tables["journal_entries"]["ids"]) == 1
        assert "postings" in tables and "lots" in tables
        assert not any("before" in c or "after" in c for c in changes
                       if c["table"] in ("journal_entries", "postings", "lots", "accounts"))
    spend = _line(factory, "POST", "/v1/points/spend")["changes"]
    assert not any(c["table"] in ("journal_entries", "postings") for c in spend)  # refused: rolled back

    log = _raw_log(factory)
    assert PHONE not in log and "王小明" not in log and "alice@example.com" not in log
    with factory() as s:
        assert verify(s) == []
