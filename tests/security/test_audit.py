"""The audit log: every write by an API key or a console session, hash-chained; tampering is found."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from jifen.security.audit import AuditEntry, verify
from tests.conftest import api_key
from tests.support.console_login import console_as


def test_writes_are_audited_and_the_chain_verifies(app, factory):
    with TestClient(app) as client:
        key = api_key(app, "admin")
        admin = {"Authorization": f"Bearer {key}"}
        client.post("/v1/members", json={"member_id": "alice"}, headers=admin | {"Idempotency-Key": "m1"})
        client.post("/v1/points/award", json={"member_id": "alice", "points": 5}, headers=admin | {"Idempotency-Key": "a1"})
        client.post("/v1/points/spend", json={"member_id": "alice", "points": 50}, headers=admin | {"Idempotency-Key": "s1"})
        client.get("/v1/members/alice", headers=admin)  # reads are not audited
        client.post("/v1/points/award", json={"member_id": "alice", "points": 5},
                    headers={"Authorization": "Bearer jf_wrong", "Idempotency-Key": "x"})  # no principal: no line
        token = console_as(client, app, "admin")
        client.post("/console/notifications/replay", data={"delivery_id": 1, "csrf": token})
    with factory() as s:
        lines = [(e.method, e.path, e.status, e.detail.get("idempotency_key"), e.role)
                 for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        assert lines == [("POST", "/v1/members", 201, "m1", "admin"), ("POST", "/v1/points/award", 200, "a1", "admin"),
                         ("POST", "/v1/points/spend", 409, "s1", "admin"),
                         ("POST", "/console/login", 303, None, "admin"),
                         ("POST", "/console/notifications/replay", 303, None, "admin")]
        assert verify(s) == []
    with factory() as s, s.begin():
        s.execute(text("UPDATE audit_log SET status = 200 WHERE seq = 3"))  # hide the refused spend
    with factory() as s:
        assert verify(s) == ["line 3: altered"]
    with factory() as s, s.begin():
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with factory() as s:
        problems = verify(s)
        assert "line 2 missing (found 3)" in problems


def test_lines_committed_together_chain_in_their_order(factory):
    """The lines of concurrent requests (audit.commit_lines, the audit kind of group commit) are chained in
    the order given after the lines before them, and the chain verifies."""
    from jifen.db import run_in_transaction
    from jifen.security import audit

    def line(path):
        return {"program_id": None, "actor": "t", "role": "admin", "method": "POST", "path": path, "status": 201,
                "detail": {"n": path}}

    run_in_transaction(factory, lambda s: audit.append(s, **line("/first")))
    assert audit.commit_lines(factory, None, [line("/a"), line("/b"), line("/c")]) == [True] * 3
    with factory() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert [(e.seq, e.path) for e in rows] == [(1, "/first"), (2, "/a"), (3, "/b"), (4, "/c")]
        assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False)) and verify(s) == []
