"""API keys found a moment ago are not looked up again: a revocation by this process is obeyed at once, one by
another process within a second, and unknown secrets are never kept."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from jifen.db import run_in_transaction, utcnow
from jifen.security import deps
from jifen.security.models import ApiKey
from jifen.security.service import KnownKeys, revoke_api_key
from tests.conftest import api_key
from tests.support.limits import client_with_local_limits


@pytest.fixture
def client(monkeypatch, app):
    with client_with_local_limits(monkeypatch, app) as c:  # limits in memory: the path without a thread
        yield c


@pytest.fixture
def lookups(monkeypatch):
    """How many times the API key table was asked."""
    asked = []

    def counted(session, secret):
        asked.append(secret)
        return authenticate(session, secret)

    authenticate = deps.authenticate
    monkeypatch.setattr(deps, "authenticate", counted)
    return asked


def test_a_key_is_looked_up_once_a_second(client, app, lookups, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("jifen.security.service.time.monotonic", lambda: clock[0])
    auth = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
    assert [client.get("/v1/rules", headers=auth).status_code for _ in range(5)] == [200] * 5
    assert len(lookups) == 1
    clock[0] += 1.01
    assert client.get("/v1/rules", headers=auth).status_code == 200
    assert len(lookups) == 2


def test_revoked_here_is_refused_at_once(client, app, lookups):
    secret = api_key(app, "admin")
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/rules", headers=auth).status_code == 200
    with app.state.sessions() as s:
        key_id = s.query(ApiKey.id).scalar()
    assert run_in_transaction(app.state.sessions, lambda s: revoke_api_key(s, key_id))
    refused = client.get("/v1/rules", headers=auth)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"


def test_revoked_elsewhere_is_refused_within_a_second(client, app, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("jifen.security.service.time.monotonic", lambda: clock[0])
    auth = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
    assert client.get("/v1/rules", headers=auth).status_code == 200
    # Another process (the CLI, another worker) revokes it: this one's revocation count does not move.
    run_in_transaction(app.state.sessions, lambda s: s.execute(update(ApiKey).values(revoked_at=utcnow())))
    assert client.get("/v1/rules", headers=auth).status_code == 200  # still trusted for the rest of the second
    clock[0] += 1.01
    assert client.get("/v1/rules", headers=auth).status_code == 401


def test_unknown_secrets_are_not_kept(client, app, lookups):
    wrong = {"Authorization": "Bearer jf_not_a_key"}
    assert [client.get("/v1/rules", headers=wrong).status_code for _ in range(3)] == [401] * 3
    assert len(lookups) == 3


def test_the_cache_is_bounded():
    from jifen.security.service import Principal

    known = KnownKeys(most=2)
    for i in range(3):
        known.put(f"s{i}", Principal(i, "k", "admin", 1))
    assert known.get("s2") is not None and known.get("s0") is None
