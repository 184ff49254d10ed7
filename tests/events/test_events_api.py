"""Events, rules, simulation and tier evaluation over HTTP: status codes, errors, permissions."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from tests.conftest import NOW, api_key, keyed
from tests.support.intake import SEED_001, configure
from tests.test_api import error_code

T = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()


class Client:
    def __init__(self, client, secret):
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def post(self, path, body=None):
        return self.client.post(path, json=body, headers=self.headers)

    def put(self, path, body=None):
        return self.client.put(path, json=body, headers=self.headers)

    def get(self, path):
        return self.client.get(path, headers=self.headers)


@pytest.fixture
def http(app, factory):
    configure(factory, now=NOW)
    with keyed(TestClient(app)) as client:
        admin = Client(client, api_key(app, "admin"))
        for mid in ("alice", "bob"):
            assert admin.client.post("/v1/members", json={"member_id": mid, "birthday": "1990-11-02"},
                                     headers=admin.headers | {"Idempotency-Key": f"m-{mid}"}).status_code == 201
        yield admin, lambda role: Client(client, api_key(app, role))


def purchase(event_id, amount="150.00", member="alice", **kw):
    return {"event_id": event_id, "member_id": member, "type": "purchase", "occurred_at": T, "amount": amount,
            "order_id": f"O-{event_id}", **kw}


def test_post_event_answers_with_the_award(http):
    api, _ = http
    r = api.post("/v1/events", purchase("e1", lines=[{"sku": "S1", "category": "美妝", "amount": "150.00"}]))
    assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "false"
    body = r.json()
    assert body["points"] == 165 and [x["rule"] for x in body["rules"]] == ["purchase_base", "big_order_bonus"]
    again = api.post("/v1/events", purchase("e1", lines=[{"sku": "S1", "category": "美妝", "amount": "150.00"}]))
    assert again.status_code == 200 and again.json()["status"] == "replayed" and again.json()["points"] == 165
    clash = api.post("/v1/events", purchase("e1", amount="1.00"))
    assert clash.status_code == 409 and error_code(clash) == "event_id_reused"
    assert api.get("/v1/members/alice/balance").json()["pending"] == 165
    member = api.get("/v1/members/alice").json()
    assert member["tier"]["code"] == "normal" and member["tier"]["next"]["remaining"] == "850.00"
    assert member["birthday"] == "1990-11-02"


@pytest.mark.parametrize("change, status, code", [
    ({"member_id": "nobody"}, 404, "unknown_member"),
    ({"type": "Purchase!"}, 422, "invalid_request"),
    ({"amount": "-1"}, 422, "invalid_request"),
    ({"amount": "1.001"}, 422, "invalid_request"),
    ({"occurred_at": "2026-11-11T10:00:00"}, 422, "invalid_request"),
    ({"occurred_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()}, 422, "occurred_in_future"),
    ({"colour": "red"}, 422, "invalid_request"),
    ({"type": "refund", "order_id": "missing"}, 404, "unknown_order"),
])
def test_bad_events_get_a_clear_error_and_change_nothing(http, change, status, code):
    api, _ = http
    r = api.post("/v1/events", purchase("bad") | change)
    assert r.status_code == status and error_code(r) == code, r.json()
    assert api.get("/v1/members/alice/balance").json()["pending"] == 0


def test_batch(http):
    api, _ = http
    events = [purchase("b1"), purchase("b2", member="ghost"), purchase("b3", member="bob", amount="20.00"),
              {"event_id": "b4", "member_id": "bob", "type": "check_in", "occurred_at": T}]
    r = api.post("/v1/events/batch", {"events": events})
    assert r.status_code == 200
    body = r.json()
    assert (body["processed"], body["replayed"], body["rejected"]) == (3, 0, 1)
    assert [x["points"] for x in body["results"] if x["status"] == "processed"] == [165, 20, 5]
    assert body["results"][1]["error"]["code"] == "unknown_member"
    again = api.post("/v1/events/batch", {"events": events}).json()
    assert (again["processed"], again["replayed"], again["rejected"]) == (0, 3, 1)
    too_many = api.post("/v1/events/batch", {"events": [purchase(f"x{i}") for i in range(1001)]})
    assert too_many.status_code == 422


def test_rules_are_versioned_and_validated(http):
    api, _ = http
    live = api.get("/v1/rules").json()
    assert live["in_force"]["version"] == 1 and live["upcoming"] == []
    bad = api.post("/v1/rules", {"rules": [{"code": "x", "events": ["purchase"], "condition": "event.amount >",
                                            "award": {"fixed": 1}}]})
    assert bad.status_code == 422 and "rules.0.condition" in bad.json()["error"]["message"]
    assert "column" in bad.json()["error"]["message"]
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    rules = {k: v for k, v in SEED_001["rules"].items() if k != "effective_from"}
    rules["rules"] = rules["rules"] + [{"code": "beauty", "events": ["purchase"], "categories": ["美妝"],
                                        "award": {"multiplier": "1.5"}}]
    new = api.post("/v1/rules", rules | {"effective_from": soon, "note": "announced 30 days ahead"})
    assert new.status_code == 201 and new.json()["version"] == 2
    live = api.get("/v1/rules").json()
    assert live["in_force"]["version"] == 1 and [v["version"] for v in live["upcoming"]] == [2]
    assert [v["version"] for v in api.get("/v1/rules/versions").json()] == [1, 2]


def test_simulate_endpoint(http):
    api, role = http
    api.post("/v1/events", purchase("s1", amount="200.00"))
    draft = {"rules": [{"code": "base", "events": ["purchase"], "award": {"per_yuan": 3}}]}
    window = {"from": (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat(),
              "to": dt.datetime.now(dt.UTC).isoformat()}
    r = api.post("/v1/rules/simulate", {**window, "rules": draft})
    assert r.status_code == 200
    assert r.json()["points"] == {"baseline": 220, "draft": 600, "difference": 380}
    assert r.json()["liability_yuan"]["difference"] == "3.80"
    backwards = api.post("/v1/rules/simulate", {"from": window["to"], "to": window["from"], "rules": draft})
    assert backwards.status_code == 422
    assert role("finance").post("/v1/rules/simulate", {**window, "rules": draft}).status_code == 200
    pos = role("pos")
    assert pos.post("/v1/rules/simulate", {**window, "rules": draft}).status_code == 403
    assert pos.post("/v1/rules", draft).status_code == 403
    assert pos.post("/v1/events", purchase("p1")).status_code == 201
    assert role("auditor").post("/v1/events", purchase("p2")).status_code == 403


def test_program_put_and_tier_evaluation(http):
    api, role = http
    cfg = SEED_001 | {"name": "新名字"}
    r = api.put("/v1/program", cfg)
    assert r.status_code == 200 and r.json()["rule_version"] is None
    assert api.get("/v1/program").json()["name"] == "新名字"
    wrong = api.put("/v1/program", cfg | {"code": "other"})
    assert wrong.status_code == 422 and error_code(wrong) == "invalid_config"
    bad = api.put("/v1/program", cfg | {"timezone": "Mars/Olympus"})
    assert bad.status_code == 422 and "timezone" in bad.json()["error"]["message"]
    assert api.get("/v1/program").json()["timezone"] == "Asia/Shanghai"
    ev = api.post("/v1/tiers/evaluate")
    assert ev.status_code == 200 and ev.json()["members"] == 2
    assert role("customer_service").post("/v1/tiers/evaluate").status_code == 403


def test_an_empty_rule_set_is_published_only_when_asked(http):
    """`POST /v1/rules` with `{}` used to publish a version without rules: every earning rule gone."""
    api, _ = http
    no_key = TestClient(api.client.app).post("/v1/rules", json={}, headers=api.headers)  # (a client adding no key)
    assert (no_key.status_code, error_code(no_key)) == (400, "idempotency_key_required")
    empty = api.post("/v1/rules", {})
    assert (empty.status_code, error_code(empty)) == (422, "empty_rule_set")
    wipe = api.put("/v1/program", SEED_001 | {"rules": {"rules": []}})
    assert (wipe.status_code, error_code(wipe)) == (422, "empty_rule_set")
    assert [v["version"] for v in api.get("/v1/rules/versions").json()] == [1]
    assert api.get("/v1/program").json()["name"] == SEED_001["name"]  # the refused PUT changed nothing
    meant = api.post("/v1/rules", {"rules": [], "allow_empty": True})
    assert meant.status_code == 201 and meant.json()["version"] == 2 and meant.json()["rules"]["rules"] == []


def test_a_keyed_rules_publication_replays(http):
    api, _ = http
    draft = {"rules": [{"code": "base", "events": ["purchase"], "award": {"per_yuan": 2}}]}
    headers = api.headers | {"Idempotency-Key": "publish-1"}
    first = api.client.post("/v1/rules", json=draft, headers=headers)
    again = api.client.post("/v1/rules", json=draft, headers=headers)
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.client.post("/v1/rules", json=draft | {"note": "x"}, headers=headers)
    assert (other.status_code, error_code(other)) == (409, "idempotency_key_reused")
    assert [v["version"] for v in api.get("/v1/rules/versions").json()] == [1, 2]
