"""The console's API keys (admin only): a new key's secret shown once and working; the form sent again
makes no second key; bad input refused with nothing made; the last write read from the audit log; a
revoked key stops working; another programme's key is unknown."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.db import run_in_transaction
from jifen.programs.models import Program
from jifen.security.audit import AuditEntry
from jifen.security.models import ApiKey
from jifen.security.service import create_api_key
from jifen.web.i18n import translator
from tests.support.console_login import console_as, once_keys

SECRET = re.compile(r'id="secret">(jf_[^<]+)<')


def create(client, csrf: str, name: str, role: str, once: str | None = None):
    once = once or once_keys(client.get("/console/api-keys").text, "/console/api-keys")["/console/api-keys"]
    return client.post("/console/api-keys", data={"csrf": csrf, "once": once, "name": name, "role": role})


def keys(app) -> list[tuple[str, str, bool]]:
    with app.state.sessions() as s:
        return [(k.name, k.role, k.revoked_at is not None) for k in s.scalars(select(ApiKey).order_by(ApiKey.id))]


def test_a_key_is_made_shown_once_used_and_revoked(site):
    app, _ = site
    with TestClient(app) as client:
        csrf = console_as(client, app, "admin")
        assert 'href="/console/api-keys"' in client.get("/console/users").text
        once = once_keys(client.get("/console/api-keys").text, "/console/api-keys")["/console/api-keys"]
        made = create(client, csrf, "till 7", "pos", once)
        assert made.status_code == 200
        secret = SECRET.search(made.text).group(1)
        till = {"Authorization": f"Bearer {secret}"}
        assert client.get("/v1/members/M1", headers=till).status_code == 200
        again = create(client, csrf, "till 7", "pos", once)  # the same form sent twice: one key, no secret
        assert again.status_code == 200 and SECRET.search(again.text) is None and "不再显示" in again.text
        assert keys(app) == [("till 7", "pos", False)]
        assert secret not in client.get("/console/api-keys").text  # never shown again
        # Its last write, from the audit log.
        assert client.post("/v1/members", json={"member_id": "pos-made"}, headers=till | {"Idempotency-Key": "k1"}
                           ).status_code == 201
        with app.state.sessions() as s:
            at = s.scalar(select(AuditEntry.at).where(AuditEntry.path == "/v1/members"))
        row = re.search(r"<td class=\"mono\">till 7</td>.*?</tr>", client.get("/console/api-keys").text, re.S).group(0)
        assert translator("zh-Hans").datetime(at) in row
        # Revoked: refused from then on.
        with app.state.sessions() as s:
            key_id = s.scalar(select(ApiKey.id))
        assert client.post(f"/console/api-keys/{key_id}/revoke", data={"csrf": csrf},
                           follow_redirects=False).status_code == 303
        assert client.get("/v1/members/M1", headers=till).status_code == 401
        assert keys(app) == [("till 7", "pos", True)]
        assert f'action="/console/api-keys/{key_id}/revoke"' not in client.get("/console/api-keys").text


def test_bad_input_makes_no_key(site):
    app, _ = site
    with TestClient(app) as client:
        csrf = console_as(client, app, "admin")
        for name, role, message in [("ci", "root", "unknown role"), ("  ", "pos", "needs a name")]:
            refused = create(client, csrf, name, role)
            assert refused.status_code == 422 and message in refused.text and SECRET.search(refused.text) is None
        assert keys(app) == []


def test_another_programmes_key_is_unknown_here(site):
    app, _ = site

    def elsewhere(s):
        other = Program(code="other", name="Other")
        s.add(other)
        s.flush()
        return create_api_key(s, other, "admin", "theirs")[0].id

    theirs = run_in_transaction(app.state.sessions, elsewhere)
    with TestClient(app) as client:
        csrf = console_as(client, app, "admin")
        assert "theirs" not in client.get("/console/api-keys").text
        assert client.post(f"/console/api-keys/{theirs}/revoke", data={"csrf": csrf}).status_code == 404
    assert keys(app) == [("theirs", "admin", False)]


def test_only_the_admin_manages_keys(site):
    app, _ = site
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator", "op")
        assert client.get("/console/api-keys").status_code == 403
        assert client.post("/console/api-keys", data={"csrf": csrf, "name": "x", "role": "admin"}).status_code == 403
    assert keys(app) == []
