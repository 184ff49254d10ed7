"""Rate limits per key, per member, and failed authentications per address (brute force), over HTTP."""

from __future__ import annotations

import pytest

from tests.conftest import api_key
from tests.support.limits import client_with_local_limits


@pytest.fixture
def tight(monkeypatch, app):
    with client_with_local_limits(monkeypatch, app, JIFEN_KEY_RATE="8/minute", JIFEN_MEMBER_RATE="3/minute",
                                  JIFEN_AUTH_FAILURES="4/minute") as client:
        yield client


def test_per_member_and_per_key(tight, app):
    client = tight
    admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
    for mid in ("alice", "bob"):
        assert client.post("/v1/members", json={"member_id": mid}, headers=admin | {"Idempotency-Key": mid}).status_code == 201
    codes = [client.post("/v1/points/award", json={"member_id": "alice", "points": 1},
                         headers=admin | {"Idempotency-Key": f"a{i}"}).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]  # three writes a minute for one member
    assert client.post("/v1/points/award", json={"member_id": "bob", "points": 1},
                       headers=admin | {"Idempotency-Key": "b0"}).status_code == 200  # another member is fine
    statuses = [client.get("/v1/members/alice", headers=admin).status_code for _ in range(3)]
    assert statuses[-1] == 429 and client.get("/v1/members/alice", headers=admin).json()["error"]["code"] == "rate_limited"
    other = {"Authorization": f"Bearer {api_key(app, 'auditor')}"}
    assert client.get("/v1/members/alice", headers=other).status_code == 200  # the limit is per key


def test_brute_force_is_stopped(tight, app):
    client = tight
    good = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
    guesses = [client.get("/v1/rules", headers={"Authorization": f"Bearer jf_guess{i}"}).status_code
               for i in range(6)]
    assert guesses[:4] == [401] * 4 and guesses[4:] == [429, 429]
    blocked = client.get("/v1/rules", headers=good)
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_attempts"
    console = client.post("/console/login", data={"username": "admin", "password": "guess-guess-guess"})
    assert console.status_code == 429  # the console's sign-in counts against the same address
