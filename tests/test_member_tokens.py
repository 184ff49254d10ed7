"""Member tokens (IDOR): member A reads and acts on A only; never on B, never through other routes."""

from __future__ import annotations

import datetime as dt

import jwt
from fastapi.testclient import TestClient

from jifen.security import member_tokens
from tests.conftest import api_key, keyed


def test_a_member_token_reaches_only_its_own_member(app, factory):
    from tests.intake import configure

    configure(factory, {"pending_days": {}})
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        for mid in ("alice", "bob"):
            client.post("/v1/members", json={"member_id": mid, "phone": "13800001111"},
                        headers=admin | {"Idempotency-Key": mid})
        client.post("/v1/points/award", json={"member_id": "bob", "points": 500}, headers=admin | {"Idempotency-Key": "b"})
        token = client.post("/v1/members/alice/token", headers=admin).json()["token"]
        alice = {"Authorization": f"Bearer {token}"}
        own = client.get("/v1/members/alice", headers=alice)
        assert own.status_code == 200 and own.json()["phone"] == "13800001111"  # their own data, unmasked
        assert client.get("/v1/members/alice/balance", headers=alice).status_code == 200
        assert client.post("/v1/members/alice/check-in", json={}, headers=alice).status_code == 201
        forbidden = [
            client.get("/v1/members/bob", headers=alice),
            client.get("/v1/members/bob/balance", headers=alice),
            client.get("/v1/members/bob/ledger", headers=alice),
            client.post("/v1/members/bob/check-in", json={}, headers=alice),
            client.post("/v1/points/transfer", json={"from_member_id": "bob", "to_member_id": "alice", "points": 100},
                        headers=alice | {"Idempotency-Key": "t"}),
            client.post("/v1/points/award", json={"member_id": "alice", "points": 100},
                        headers=alice | {"Idempotency-Key": "x"}),
            client.post("/v1/gifts", json={"from_member_id": "bob", "to_member_id": "alice", "points": 10},
                        headers=alice | {"Idempotency-Key": "g"}),
            client.get("/v1/rules", headers=alice),
        ]
        assert [r.status_code for r in forbidden] == [403] * len(forbidden)
        bob = client.get("/v1/members/bob/balance", headers=admin).json()
        assert bob["available"] == 500  # untouched
        past = member_tokens.issue(1, "alice", dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))["token"]
        assert client.get("/v1/members/alice", headers={"Authorization": f"Bearer {past}"}).status_code == 401
        guess = "a guessed secret, long enough: 32+ bytes"
        forged = jwt.encode({"iss": "jifen", "sub": "bob", "prg": 1, "exp": 9999999999}, guess, algorithm="HS256")
        assert client.get("/v1/members/bob", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
