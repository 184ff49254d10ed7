"""Hostile input (issue 16) on the main writes: bytes that are not UTF-8, bodies that are not JSON or not an object,
numbers JSON cannot carry or the field cannot hold, ids made to look like another member's, NUL, lone surrogates,
and expression bombs in rule conditions. Each is a clear 4xx in the {"error": {"code", "message"}} shape, changes
nothing (members, events, orders, journal, postings, stored answers, rule versions), and the server answers after.

Ids with invisible characters (zero-width space U+200B, BOM U+FEFF, the RTL override U+202E, NUL, whitespace) are
refused on write, naming the field (422 `invalid_request`): "ali\\u200bce" is shown as "alice", a look-alike
member an operator could not tell apart. Where a member id is created or named by the ledger, mall and member
APIs, the id pattern (ASCII letters, digits, _ . : @ -) already refuses them; an event's member id takes any
visible letters (members imported from a legacy system may have others) but no invisible one. NUL is refused in
every text field (PostgreSQL cannot store it: it was a 500 there). A name given twice in one JSON object is
400 `malformed_json`: Python's parser took the last, another reader of the same body may take the first."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from jifen.db import utcnow
from tests.rules.test_rule_conditions_hostile import rules_with
from tests.test_hostile_json import site, state  # noqa: F401  (site: a fixture)

AT = (utcnow() - dt.timedelta(hours=1)).isoformat()
EVENT = '{"event_id":"h1","member_id":%s,"type":"purchase","occurred_at":"' + AT + '","amount":%s}'
# Each write: its body around a member id and a number (both as JSON text), the field each is named by in errors.
WRITES = {
    "event": ("/v1/events", EVENT, ""),
    "batch": ("/v1/events/batch", '{"events":[' + EVENT + "]}", "events.0."),
    "award": ("/v1/points/award", '{"member_id":%s,"points":%s}', ""),
    "spend": ("/v1/points/spend", '{"member_id":%s,"points":%s}', ""),
    "member": ("/v1/members", '{"member_id":%s,"joined_at":"' + AT + '","attributes":{"n":%s}}', ""),
    "redemption": ("/v1/redemptions", '{"member_id":%s,"reward":"kettle","quantity":%s}', ""),
}
NUMBER_FIELD = {"event": "amount", "batch": "amount", "award": "points", "spend": "points", "redemption": "quantity"}
# A text field of each, and NUL in it: a 500 on PostgreSQL (which cannot store NUL) before text refused it.
NUL_FIELD = {"event": "channel", "batch": "channel", "award": "reason", "spend": "device_id", "member": "name",
             "redemption": "device_id"}
FINE = {"event": '"100"', "batch": '"100"', "member": "1"}  # a valid number for each (1 elsewhere)

INVISIBLE = "should match pattern"  # said by the id pattern; an event's member id says which character
BAD_IDS = {  # JSON text of a member id → what the message says
    '"ali\\u200bce"': "(U+200B)", '"\\ufeffalice"': "(U+FEFF)", '"\\u202ealice"': "(U+202E)",
    '"ali\\u0000ce"': "NUL character (U+0000)", '"   "': "(U+0020)", '""': "at least 1 character",
    '"' + "a" * 65 + '"': "at most 64 characters",
    '"\\ud800"': "unable to parse raw data as a unicode string", "12": "valid string",
}
NOT_NUMBERS = {"NaN": "finite number", "Infinity": "finite number", "-Infinity": "finite number",
               "1e400": "finite number"}  # JSON cannot carry them; Python's parser takes them
BAD_COUNTS = {  # for whole points and quantities
    "1" + "0" * 30: "less than or equal to", "123456789012345678901234567890": "less than or equal to",
    '"123456789012345678901234567890"': "an integer (a JSON number)", "-0": "greater than", "1.5": "fractional part",
    "0.000001": "fractional part",
}
BAD_AMOUNTS = {  # for an event's amount in ¥ (-0 is 0, a valid amount)
    "1" + "0" * 30: "less than or equal to", '"123456789012345678901234567890"': "less than or equal to",
    '"0.001"': "decimal places", "-1": "greater than or equal to 0",
}
NOT_A_BODY = [  # raw body, content type → status, code, what the message says
    (b'{"member_id": "\xc3\x28"}', "application/json", 400, "malformed_json", "not UTF-8"),
    (b"\xff\xfe{}", "application/json", 400, "malformed_json", "not valid JSON"),  # (a UTF-16 BOM)
    (b"member_id=alice&points=1", "application/json", 400, "malformed_json", "not valid JSON"),
    (b"{'member_id': 'alice'}", "application/json", 400, "malformed_json", "not valid JSON"),
    (b'[{"member_id": "alice", "points": 1}]', "application/json", 422, "invalid_request", "valid dictionary"),
    (b"null", "application/json", 422, "invalid_request", "valid dictionary"),
    (b'{"member_id": "alice", "member_id": "bob", "points": 1}', "application/json", 400, "malformed_json",
     'the name "member_id" is given twice'),
    (b'{"member_id": "alice", "attributes": {"k": 1, "k": 2}}', "application/json", 400, "malformed_json",
     'the name "k" is given twice'),
    (b'{"member_id": "alice", "points": 1}', "text/plain", 400, "malformed_json", "Content-Type: application/json"),
    (b"member_id=alice&points=1", "application/x-www-form-urlencoded", 400, "malformed_json", "Content-Type"),
]


def cases(write: str):
    """(body, content type, status, code, the message's start, what it says) of every hostile request to a write."""
    _, body, prefix = WRITES[write]
    fine = FINE.get(write, "1")
    for member_id, says in BAD_IDS.items():
        says = INVISIBLE if says.startswith(("(U+", "NUL")) and write not in ("event", "batch") else says
        where = f"{prefix}member_id: "
        yield (body % (member_id, fine)).encode(), "application/json", 422, "invalid_request", where, says
    numbers = NOT_NUMBERS | (BAD_AMOUNTS if write in ("event", "batch") else {} if write == "member" else BAD_COUNTS)
    for number, says in numbers.items():
        where = f"{prefix}{NUMBER_FIELD.get(write, 'attributes')}: "
        says = "not JSON numbers" if write == "member" else says  # (in free-form attributes)
        yield (body % ('"alice"', number)).encode(), "application/json", 422, "invalid_request", where, says
    field = NUL_FIELD[write]
    nul = (body % ('"alice"', fine)).replace('"member_id":', f'"{field}":"a\\u0000b","member_id":')
    yield nul.encode(), "application/json", 422, "invalid_request", f"{prefix}{field}: ", "NUL character"
    for raw, content_type, status, code, says in NOT_A_BODY:
        yield raw, content_type, status, code, "", says


@pytest.mark.parametrize("write", WRITES)
def test_hostile_input_is_refused_and_changes_nothing(site, app, write):  # noqa: F811
    client, admin, _ = site
    path = WRITES[write][0]
    before, balance = state(app), client.get("/v1/members/alice/balance", headers=admin).json()
    tried = 0
    for body, content_type, status, code, starts, says in cases(write):
        r = client.post(path, content=body, headers=admin | {"Content-Type": content_type,
                                                             "Idempotency-Key": uuid.uuid4().hex})
        error = r.json().get("error") if r.headers["content-type"] == "application/json" else None
        assert (r.status_code, error and error["code"]) == (status, code), (body[:120], r.text[:300])
        assert set(error) >= {"code", "message"} and error["message"].startswith(starts), (body[:120], error)
        assert says in error["message"], (body[:120], error)
        tried += 1
    assert tried == 1 + len(BAD_IDS) + len(NOT_A_BODY) + len(NOT_NUMBERS) + {
        "event": len(BAD_AMOUNTS), "batch": len(BAD_AMOUNTS), "member": 0}.get(write, len(BAD_COUNTS))
    assert state(app) == before
    assert client.get("/v1/members/alice/balance", headers=admin).json() == balance
    assert client.get("/healthz").json()["status"] == "ok"


BOMBS = {  # a rule condition → what the refusal says
    "(" * 40 + "1" + ")" * 40 + " > 0": "brackets nested 40 deep",
    "'" + "x" * 100_000 + "' == event.order_id": "too long",
    " + ".join(["'xxxxxxxxxx'"] * 3_000) + " == ''": "too long",
    "[" + ",".join(map(str, range(50))) + "].map(a, [" + ",".join(map(str, range(50))) + "].map(b, ["
    + ",".join(map(str, range(50))) + "].map(c, a + b + c))).size() > 0": "too costly",
    "event.lines.map(l, event.lines.map(m, event.lines.map(n, l.amount))).size() > 0": "too costly",
    "event.amount > 0.0 && 'a\u0000b' == ''": "NUL character",
}


def test_expression_bombs_in_rule_conditions_are_refused(site, app):  # noqa: F811
    client, admin, send = site
    versions = client.get("/v1/rules/versions", headers=admin).json()
    before = state(app)
    for condition, says in BOMBS.items():
        r = send("/v1/rules", json.dumps(rules_with(condition)).encode())
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), r.text[:300]
        assert r.json()["error"]["message"].startswith("rules.6.condition: ") and says in r.json()["error"]["message"]
        assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/v1/rules/versions", headers=admin).json() == versions
    assert state(app) == before
