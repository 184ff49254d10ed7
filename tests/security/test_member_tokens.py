"""Member tokens (IDOR): member A reads and acts on A only; never on B, never through other routes."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from jifen.security import member_tokens
from tests.conftest import api_key, keyed


def test_a_member_token_reaches_only_its_own_member(app, factory):
    from tests.support.intake import configure

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


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def alice(app):
    """A client, the admin key's headers, and alice's member token (bob is another member)."""
    with keyed(TestClient(app)) as client:
        admin = bearer(api_key(app, "admin"))
        for mid in ("alice", "bob"):
            assert client.post("/v1/members", json={"member_id": mid}, headers=admin | {"Idempotency-Key": mid}
                               ).status_code == 201
        yield client, admin, bearer(client.post("/v1/members/alice/token", headers=admin).json()["token"])


def test_a_member_token_cannot_mint_tokens(alice):
    """Issue 19 (6): with its own token a member got a fresh one, and so on: the 15 minutes had no end."""
    client, admin, token = alice
    renewed = client.post("/v1/members/alice/token", headers=token)
    assert renewed.status_code == 403 and renewed.json()["error"]["code"] == "member_token_cannot_mint"
    assert "token" not in renewed.json()
    assert client.post("/v1/members/bob/token", headers=token).status_code == 403
    assert client.post("/v1/members/alice/token", headers=admin).status_code == 200  # the brand's backend can


def test_what_else_members_write_opened_to_a_member_token(alice):
    """Each route a member token reached through its permissions, decided: its invite code and its
    restrictions are its own business; befriending someone (both ways, opening each one's feed) is not."""
    client, admin, token = alice
    code = client.post("/v1/members/alice/invite-code", headers=token)
    assert code.status_code == 200
    assert client.post("/v1/members/alice/invite-code", headers=admin).json() == code.json()  # one code, kept
    assert client.post("/v1/members/bob/invite-code", headers=token).status_code == 403
    imposed = client.post("/v1/members/alice/restrictions", json={"kind": "freeze", "reason": "shared device"},
                          headers=admin | {"Idempotency-Key": "f"}).json()
    mine = client.get("/v1/members/alice/restrictions", headers=token)
    assert mine.status_code == 200 and [r["id"] for r in mine.json()] == [imposed["id"]]  # what to appeal
    assert client.get("/v1/members/bob/restrictions", headers=token).status_code == 403
    befriend = client.post("/v1/members/alice/friends", json={"friend_id": "bob"}, headers=token)
    assert befriend.status_code == 403 and befriend.json()["error"]["code"] == "forbidden"
    assert client.get("/v1/members/bob/friends", headers=admin).json()["friends"] == []  # nothing changed
    assert client.get("/v1/members/alice/friends", headers=token).status_code == 200


def test_the_routes_open_to_a_member_token_are_documented():
    """docs/security.md lists exactly MEMBER_ROUTES (the matrix test checks them against the app)."""
    text = (Path(__file__).parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    section = text[text.index("## Member tokens"):text.index("## Rate limits")]
    listed = " ".join(line.split("|")[1] for line in section.splitlines() if line.startswith("| `"))  # 1st column
    assert set(re.findall(r"`(GET|POST|PUT|DELETE) (/v1/[^`]+)`", listed)) == member_tokens.MEMBER_ROUTES
