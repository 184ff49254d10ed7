"""The HTTP API: happy paths, idempotency, and every bad input answered with a clear 4xx that
changes nothing."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from jifen.api import create_app
from jifen.approvals.models import AdjustmentRequest
from jifen.openapi import api_routes
from jifen.programs.models import Program
from tests.conftest import Ledger, api_key

_counter = iter(range(10**9))


class Api:
    def __init__(self, client: TestClient, secret: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def post(self, path, body=None, key=None, **kw):
        headers = self.headers | {"Idempotency-Key": key or f"k-{next(_counter)}"}
        return self.client.post(path, json=body, headers=headers, **kw)

    def get(self, path, **kw):
        return self.client.get(path, headers=self.headers, **kw)


@pytest.fixture
def api(app):
    with TestClient(app) as client:
        yield Api(client, api_key(app, "admin"))


@pytest.fixture
def members(api):
    for mid in ("alice", "bob"):
        assert api.post("/v1/members", {"member_id": mid, "name": mid.title(), "phone": "13800001234"}).status_code == 201
    return api


def balance(api, mid, wallet=None):
    params = {"wallet": wallet} if wallet else {}
    return api.get(f"/v1/members/{mid}/balance", params=params).json()


def error_code(response):
    return response.json()["error"]["code"]


def test_member_lifecycle_and_points_flow(members):
    api = members
    r = api.post("/v1/points/award", {"member_id": "alice", "points": 500, "reference": "SO-1"})
    assert r.status_code == 200
    award = r.json()
    assert award["type"] == "award" and award["points"] == 500
    assert award["hash"] is None  # sealed into the chain as the transaction commits
    assert {p["account"]: p["amount"] for p in award["postings"]} == {"issuance": -500, "available": 500}
    assert api.post("/v1/points/spend", {"member_id": "alice", "points": 120}).status_code == 200
    t = api.post("/v1/points/transfer", {"from_member_id": "alice", "to_member_id": "bob", "points": 80})
    assert t.status_code == 200 and t.json()["counterparty_member_id"] == "bob"
    b = balance(api, "alice")
    assert (b["available"], b["pending"], b["held"], b["frozen"], b["debt"]) == (300, 0, 0, 0, 0)
    assert b["value_cny"] == "3.00" and b["next_expiries"][0]["points"] == 300
    member = api.get("/v1/members/alice").json()
    assert member["balances"][0]["available"] == 300 and member["name"] == "Alice"
    sealed = api.get(f"/v1/entries/{award['entry_id']}").json()
    assert sealed["seq"] == 1 and len(sealed["hash"]) == 64 and sealed["postings"] == award["postings"]


def test_holds_over_http(members):
    api = members
    api.post("/v1/points/award", {"member_id": "alice", "points": 100})
    h = api.post("/v1/holds", {"member_id": "alice", "points": 70, "reference": "RD-9"})
    assert h.status_code == 201 and h.json()["status"] == "open"
    hold_id = h.json()["hold_id"]
    assert balance(api, "alice")["held"] == 70
    assert api.post(f"/v1/holds/{hold_id}/capture").json()["status"] == "captured"
    r = api.post(f"/v1/holds/{hold_id}/release")
    assert r.status_code == 409 and error_code(r) == "hold_not_open"
    assert api.get(f"/v1/holds/{hold_id}").json()["status"] == "captured"
    assert balance(api, "alice")["available"] == 30 and balance(api, "alice")["held"] == 0
    assert error_code(api.post("/v1/holds/999999/capture")) == "unknown_hold"


def test_reverse_adjust_freeze(members):
    api = members
    e = api.post("/v1/points/award", {"member_id": "alice", "points": 100}).json()
    r = api.post("/v1/points/reverse", {"entry_id": e["entry_id"], "points": 25, "reason": "partial refund"})
    assert r.status_code == 200 and r.json()["reverses_entry_id"] == e["entry_id"]
    adj = api.post("/v1/points/adjust", {"member_id": "alice", "points": -5, "reason": "duplicate award"})
    assert adj.status_code == 200 and adj.json()["actor"].startswith("apikey:")
    assert api.post("/v1/points/freeze", {"member_id": "alice", "points": 30}).status_code == 200
    b = balance(api, "alice")
    assert (b["available"], b["frozen"]) == (40, 30)
    assert api.post("/v1/points/unfreeze", {"member_id": "alice"}).status_code == 200
    assert balance(api, "alice")["available"] == 70


def test_idempotent_replay_returns_the_first_result(members):
    api = members
    body = {"member_id": "alice", "points": 50}
    first = api.post("/v1/points/award", body, key="award-1")
    again = api.post("/v1/points/award", body, key="award-1")
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and first.headers["Idempotent-Replayed"] == "false"
    assert balance(api, "alice")["available"] == 50
    other = api.post("/v1/points/award", {"member_id": "alice", "points": 51}, key="award-1")
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    same_key_other_op = api.post("/v1/points/spend", body, key="award-1")
    assert same_key_other_op.status_code == 409
    assert balance(api, "alice")["available"] == 50


def test_failed_request_does_not_burn_its_key(members):
    api = members
    r = api.post("/v1/points/spend", {"member_id": "alice", "points": 10}, key="spend-1")
    assert r.status_code == 409 and error_code(r) == "insufficient_points"
    api.post("/v1/points/award", {"member_id": "alice", "points": 10})
    assert api.post("/v1/points/spend", {"member_id": "alice", "points": 10}, key="spend-1").status_code == 200


BAD_AWARDS = [
    ({"member_id": "alice", "points": 0}, 422, "invalid_request"),
    ({"member_id": "alice", "points": -3}, 422, "invalid_request"),
    ({"member_id": "alice", "points": 2.5}, 422, "invalid_request"),
    ({"member_id": "alice", "points": "100"}, 422, "invalid_request"),
    ({"member_id": "alice", "points": True}, 422, "invalid_request"),
    ({"member_id": "alice", "points": 10**12 + 1}, 422, "invalid_request"),
    ({"member_id": "alice", "points": 10**30}, 422, "invalid_request"),
    ({"member_id": "alice"}, 422, "invalid_request"),
    ({"member_id": "alice", "points": 5, "pointz": 5}, 422, "invalid_request"),
    ({"member_id": "", "points": 5}, 422, "invalid_request"),
    ({"member_id": "alice", "points": 5, "occurred_at": "2026-01-01T00:00:00"}, 422, "invalid_request"),
    ({"member_id": "alice", "points": 5, "wallet": "nope"}, 404, "unknown_wallet"),
    ({"member_id": "nobody", "points": 5}, 404, "unknown_member"),
    ({"member_id": "alice", "points": 5, "occurred_at": "2026-01-02T00:00:00Z",
      "expires_at": "2026-01-01T00:00:00Z"}, 422, "invalid_expiry"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_AWARDS)
def test_bad_award_bodies(members, body, status, code):
    api = members
    r = api.post("/v1/points/award", body)
    assert (r.status_code, error_code(r)) == (status, code)
    assert r.json()["error"]["message"]
    assert balance(api, "alice")["available"] == 0
    assert api.get("/v1/members/alice/ledger").json()["items"] == []


def test_malformed_json_missing_key_and_auth(members, app):
    api = members
    r = api.client.post("/v1/points/award", content=b'{"member_id": "alice", "points": 5',
                        headers=api.headers | {"Idempotency-Key": "x", "Content-Type": "application/json"})
    assert (r.status_code, error_code(r)) == (400, "malformed_json")
    r = api.client.post("/v1/points/award", json={"member_id": "alice", "points": 5}, headers=api.headers)
    assert (r.status_code, error_code(r)) == (400, "idempotency_key_required")
    r = api.client.post("/v1/points/award", json={"member_id": "alice", "points": 5},
                        headers={"Idempotency-Key": "y"})
    assert (r.status_code, error_code(r)) == (401, "unauthorized")
    r = api.client.get("/v1/members/alice", headers={"Authorization": "Bearer jf_wrong"})
    assert r.status_code == 401
    auditor = Api(api.client, api_key(app, "auditor"))
    r = auditor.post("/v1/points/award", {"member_id": "alice", "points": 5})
    assert (r.status_code, error_code(r)) == (403, "forbidden")
    assert auditor.get("/v1/members/alice/balance").json()["available"] == 0
    pos = Api(api.client, api_key(app, "pos"))
    assert pos.post("/v1/points/adjust", {"member_id": "alice", "points": 5, "reason": "x"}).status_code == 403
    assert balance(api, "alice")["available"] == 0


def test_other_refusals(members):
    api = members
    api.post("/v1/points/award", {"member_id": "alice", "points": 10})
    cases = [
        ("/v1/points/spend", {"member_id": "alice", "points": 11}, 409, "insufficient_points"),
        ("/v1/points/transfer", {"from_member_id": "alice", "to_member_id": "alice", "points": 1}, 422, "same_member"),
        ("/v1/points/transfer", {"from_member_id": "alice", "to_member_id": "zed", "points": 1}, 404, "unknown_member"),
        ("/v1/points/adjust", {"member_id": "alice", "points": 5}, 422, "invalid_request"),
        ("/v1/points/adjust", {"member_id": "alice", "points": 0, "reason": "x"}, 422, "invalid_points"),
        ("/v1/points/reverse", {"entry_id": 987654}, 404, "unknown_entry"),
        ("/v1/members", {"member_id": "alice"}, 409, "member_exists"),
        ("/v1/members", {"member_id": "has space"}, 422, "invalid_request"),
    ]
    for path, body, status, code in cases:
        r = api.post(path, body)
        assert (r.status_code, error_code(r)) == (status, code), (path, body, r.json())
    assert balance(api, "alice")["available"] == 10
    assert api.get("/v1/members/nobody").status_code == 404
    assert error_code(api.get("/v1/members/alice/ledger", params={"cursor": "!!"})) == "invalid_cursor"
    assert error_code(api.get("/v1/nope")) == "not_found"


def test_ledger_pagination_newest_first(members):
    api = members
    for i in range(7):
        api.post("/v1/points/award", {"member_id": "alice", "points": i + 1})
    seen, cursor = [], None
    while True:
        page = api.get("/v1/members/alice/ledger", params={"limit": 3} | ({"cursor": cursor} if cursor else {})).json()
        seen += [e["points"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]


def test_openapi_documents_every_route(api):
    spec = api.client.get("/openapi.json").json()
    for path in ("/v1/points/award", "/v1/points/reverse", "/v1/holds/{hold_id}/capture", "/v1/members/{member_id}/ledger"):
        assert path in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert api.client.get("/healthz").json()["status"] == "ok"


def test_api_writes_verify_clean(members, app):
    api = members
    api.post("/v1/points/award", {"member_id": "alice", "points": 100})
    api.post("/v1/points/transfer", {"from_member_id": "alice", "to_member_id": "bob", "points": 40})
    assert Ledger(app.state.sessions).verify() == []


def test_docs_work_without_a_cdn(api):
    page = api.client.get("/docs").text
    assert "cdn" not in page.lower() and "swagger-ui-bundle.js" in page
    script = next(part.split('"')[0] for part in page.split('src="')[1:] if "swagger-ui-bundle" in part)
    assert script.startswith("/") and api.client.get(script).status_code == 200


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path, sqlite_template):
    """Embedded default: with a write transaction open, a read still answers at once (PostgreSQL
    readers never wait for writers anyway)."""
    path = tmp_path / "readers.db"
    shutil.copy(sqlite_template, path)
    application = create_app(f"sqlite:///{path}")
    writer = application.state.sessions()
    writer.connection()  # BEGIN IMMEDIATE: holds the write lock
    try:
        with application.state.read_sessions() as reader:
            started = time.perf_counter()
            assert reader.execute(text("SELECT count(*) FROM members")).scalar() == 0
            assert time.perf_counter() - started < 5  # not the 30 s busy timeout
    finally:
        writer.rollback()
        writer.close()
        application.state.engine.dispose()


def test_ids_beyond_64_bits_are_bad_input_not_a_crash(api):
    for path in ("/v1/holds/30319803880583864320", "/v1/entries/9223372036854775808",
                 "/v1/redemptions/754570911812597693764754029538181120"):
        r = api.get(path)
        assert r.status_code == 422 and error_code(r) == "out_of_range", (path, r.text)


def test_every_write_requires_an_idempotency_key(sqlite_app):
    """From the route table: every POST / PUT / DELETE under /v1 that changes state refuses a request without a
    key (400, before the body is even read), and its document says the header is required. Events carry
    their key in the body (event_id); a simulation and a member token change nothing."""
    exempt = {("POST", "/v1/events"), ("POST", "/v1/events/batch"), ("POST", "/v1/rules/simulate"),
              ("POST", "/v1/bandit-simulations"), ("POST", "/v1/experiments/plan"),
              ("POST", "/v1/members/{member_id}/token")}
    spec = sqlite_app.openapi()
    writes = sorted((m, r.path) for r in api_routes(sqlite_app.routes) if r.path.startswith("/v1")
                    for m in r.methods if m in ("POST", "PUT", "DELETE"))
    assert len(writes) > 55
    with TestClient(sqlite_app) as client:
        admin = {"Authorization": f"Bearer {api_key(sqlite_app, 'admin')}"}
        for method, path in writes:
            r = client.request(method, re.sub(r"\{[^}]+\}", "1", path), headers=admin, json={})
            header = [p for p in spec["paths"][path][method.lower()].get("parameters", [])
                      if p["name"] == "Idempotency-Key"]
            if (method, path) in exempt:
                assert r.status_code != 400 and header == [], (method, path)
            else:
                assert (r.status_code, error_code(r)) == (400, "idempotency_key_required"), (method, path)
                assert header and header[0]["required"] is True, (method, path)


def test_a_405_allows_every_method_of_the_path(api):
    r = api.client.request("PATCH", "/v1/program", headers=api.headers)
    assert (r.status_code, error_code(r)) == (405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, PUT"  # two routes share the path: both are named


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/points/award", {"member_id": "alice", "points": 5, "occurred_at": 1767225600}),  # a number is no date
    ("/v1/teams", {"member_id": "alice", "name": "t", "goal": False}),  # false is not 0
    ("/v1/teams", {"member_id": "alice", "name": "t", "goal": "5"}),  # "5" is not 5
    ("/v1/members/alice/restrictions", {"kind": "freeze", "permanent": 0, "reason": "x"}),  # 0 is not false
    ("/v1/members/alice/check-in", {"day": 20260101}),
])
def test_bodies_are_read_as_the_json_types_the_document_gives(members, path, body):
    r = members.post(path, body)
    assert (r.status_code, error_code(r)) == (422, "invalid_request"), r.json()
    assert members.get("/v1/members/alice/restrictions").json() == []
    assert members.get("/v1/members/alice/ledger").json()["items"] == []


def test_an_integral_json_number_is_an_integer(members):
    r = members.post("/v1/points/award", {"member_id": "alice", "points": 5.0})  # JSON Schema: 5.0 is an integer
    assert r.status_code == 200 and r.json()["points"] == 5
    assert members.post("/v1/points/award", {"member_id": "alice", "points": 5.5}).status_code == 422
    assert balance(members, "alice")["available"] == 5


def test_an_adjustment_above_the_threshold_waits_for_approval_as_in_the_console(members, app):
    api = members
    with app.state.sessions.begin() as s:
        s.scalars(select(Program)).one().risk = {"adjust_approval_above": 500}
    below = api.post("/v1/points/adjust", {"member_id": "alice", "points": 500, "reason": "goodwill"})
    assert below.status_code == 200 and below.json()["points"] == 500 and balance(api, "alice")["available"] == 500
    body = {"member_id": "alice", "points": -501, "reason": "lost parcel"}
    above = api.post("/v1/points/adjust", body, key="adj-1")
    assert above.status_code == 202 and above.json()["status"] == "pending_approval"
    assert above.json()["threshold"] == 500 and balance(api, "alice")["available"] == 500  # nothing posted
    again = api.post("/v1/points/adjust", body, key="adj-1")  # a retry: the same request, not a second one
    assert again.status_code == 202 and again.json() == above.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    with app.state.sessions() as s:
        pending = s.scalars(select(AdjustmentRequest)).all()
    assert [(r.id, r.points, r.status, r.maker) for r in pending] == [
        (above.json()["approval_id"], -501, "pending", below.json()["actor"])]
