"""Hostile JSON (issue 19): free-form fields nested deep or made huge, bodies too large to parse, bodies
nested past the JSON parser. Each is a clear 4xx that changes nothing, and the server answers after it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from jifen.api import MAX_BODY
from jifen.db import run_in_transaction, utcnow
from jifen.events.models import Event
from jifen.events.schemas import MAX_BATCH
from jifen.freejson import MAX_BYTES, MAX_DEPTH, MAX_ITEMS
from jifen.mall.models import Redemption
from jifen.members.models import Member
from tests.conftest import api_key, keyed
from tests.mall.test_mall import fund
from tests.support.intake import add_members, configure

JSON = {"Content-Type": "application/json"}
_keys = iter(range(10**9))


def nested(levels: int) -> str:
    """A JSON object `levels` deep (itself counting as 1), as text: {"a":{"a":…{}…}}."""
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


def sized(size: int) -> str:
    """A flat JSON object of exactly `size` bytes as compact JSON."""
    return json.dumps({"a": "x" * (size - len('{"a":""}'))}, separators=(",", ":"))


def event(value: str, event_id: str = "h1") -> str:
    at = (utcnow() - dt.timedelta(hours=1)).isoformat()
    return (f'{{"event_id":"{event_id}","member_id":"alice","type":"purchase","occurred_at":"{at}",'
            f'"amount":"100","order_id":"O-{event_id}","attributes":{value}}}')


# Every free-form field of a request body: the route; its body around a value (n: a fresh event or member id);
# the field an error names; the values as stored.
FIELDS = {
    "event": ("/v1/events", lambda v, n: event(v, f"h{n}"), "attributes",
              select(Event.data["attributes"]).order_by(Event.id)),
    "batch": ("/v1/events/batch", lambda v, n: f'{{"events":[{event(v, f"h{n}")}]}}', "events.0.attributes",
              select(Event.data["attributes"]).order_by(Event.id)),
    "member": ("/v1/members", lambda v, n: f'{{"member_id":"m{n}","attributes":{v}}}', "attributes",
               select(Member.attributes).where(Member.member_id != "alice").order_by(Member.id)),
    "address": ("/v1/redemptions", lambda v, n: f'{{"member_id":"alice","reward":"kettle","address":{v}}}', "address",
                select(Redemption.address).order_by(Redemption.id)),
}


@pytest.fixture
def site(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "alice")
    fund(factory, "alice", 10_000)
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert client.post("/v1/rewards", json={"code": "kettle", "name": "Kettle", "kind": "physical",
                                                "points": 100, "stock": 10}, headers=admin).status_code == 201

        def send(path: str, body):
            return client.post(path, content=body, headers=admin | JSON | {"Idempotency-Key": f"k{next(_keys)}"})

        yield client, admin, send


def state(app) -> dict:
    """What a request could change: members, events, orders, journal entries, stored responses, points."""
    with app.state.read_sessions() as s:
        return {table: s.scalar(text(f"SELECT count(*) FROM {table}")) for table in
                ("members", "events", "redemptions", "journal_entries", "idempotency_records", "postings")}


@pytest.mark.parametrize("field", FIELDS)
def test_free_json_is_bounded_in_depth_and_size(site, app, field):
    client, _, send = site
    path, body, name, stored = FIELDS[field]
    before = state(app)
    for value, status, code, says in (
        (nested(MAX_DEPTH + 1), 422, "invalid_request", "too deep"),
        (nested(300), 422, "invalid_request", "too deep"),  # was a 500: the idempotency digest gave up at 256
        (sized(MAX_BYTES + 1), 422, "invalid_request", "too large"),
        (sized(10_000_000), 422, "invalid_request", "too large"),  # was stored
        ('{"tags": [' + ",".join(["1"] * (MAX_ITEMS + 1)) + "]}", 422, "invalid_request", "an array of 501 items"),
        (nested(1_000), 400, "malformed_json", "nested too deeply"),  # past Python's JSON parser
        (nested(100_000), 400, "malformed_json", "nested too deeply"),
    ):
        r = send(path, body(value, 0))
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text[:300]
        assert says in r.json()["error"]["message"]
        if status == 422:
            assert r.json()["error"]["message"].startswith(f"{name}: ")  # names the field
        assert client.get("/healthz").status_code == 200
    assert state(app) == before
    # At the bounds exactly, the value is taken and stored as sent.
    at_bounds = [nested(MAX_DEPTH), sized(MAX_BYTES)]
    for n, value in enumerate(at_bounds, 1):
        r = send(path, body(value, n))
        assert r.status_code in (200, 201) and "error" not in r.text[:300], r.text[:300]
    with app.state.read_sessions() as s:
        assert s.scalars(stored).all() == [json.loads(v) for v in at_bounds]


def test_a_body_over_the_limit_is_refused_before_it_is_read(site, app):
    client, _, send = site
    before = state(app)
    huge = b'{"member_id":"mallory","name":"' + b"x" * MAX_BODY + b'"}'
    declared = send("/v1/members", huge)  # by its Content-Length
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "body_too_large"
    chunked = send("/v1/members", iter([huge[:1024], huge[1024:]]))  # no Content-Length: counted as it comes
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "body_too_large"
    not_utf8 = send("/v1/members", b'{"member_id": "\xff\xfe"}')
    assert not_utf8.status_code == 400 and not_utf8.json()["error"]["code"] == "malformed_json"
    assert state(app) == before
    assert client.get("/healthz").status_code == 200


def test_a_full_batch_at_the_field_bound_fits_in_the_body_limit(sqlite_app):
    """1,000 events, each with attributes of the largest size allowed: the body is read and every event
    validated (the last one is bad on purpose, so nothing is stored and the test stays quick)."""
    events = [event(sized(MAX_BYTES), f"b{i}") for i in range(MAX_BATCH)]
    events[-1] = events[-1].replace('"amount":"100"', '"amount":"-1"')
    body = f'{{"events":[{",".join(events)}]}}'
    assert MAX_BATCH * MAX_BYTES < len(body) <= MAX_BODY
    with keyed(TestClient(sqlite_app)) as client:
        r = client.post("/v1/events/batch", content=body,
                        headers=JSON | {"Authorization": f"Bearer {api_key(sqlite_app, 'admin')}"})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith(f"events.{MAX_BATCH - 1}.amount: ")


def test_rows_stored_before_the_bounds_still_read(site, app):
    """Before the bounds, 256 levels (the idempotency digest's limit) and 10 MB could be stored: such rows
    still read, through every view that shows them."""
    client, admin, send = site
    order = send("/v1/redemptions", '{"member_id":"alice","reward":"kettle","address":{"line":"1 Road"}}').json()
    assert send("/v1/events", event("{}")).status_code == 201
    deep, big = json.loads(nested(256)), {"a": "x" * 10_000_000}

    def legacy(s):
        s.scalars(select(Member).where(Member.member_id == "alice")).one().attributes = deep
        s.scalars(select(Event).where(Event.event_id == "h1")).one().data = {"lines": [], "attributes": deep}
        s.get(Redemption, order["id"]).address = big

    run_in_transaction(app.state.sessions, legacy)
    member = client.get("/v1/members/alice", headers=admin)
    assert member.status_code == 200 and member.json()["attributes"] == deep
    export = client.get("/v1/members/alice/export", headers=admin)
    assert export.status_code == 200 and export.json()["redemptions"][0]["address"] == big
    assert client.get(f"/v1/redemptions/{order['id']}", headers=admin).json()["address"] == big
    assert send("/v1/events", event("{}", "h2")).status_code == 201  # the member's next event is scored
