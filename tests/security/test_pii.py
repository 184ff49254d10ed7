"""Personal data at rest: encrypted (no plaintext phone in a dump), found by keyed hash, masked by role,
re-encrypted on key rotation (AES-GCM to SM4-GCM)."""

from __future__ import annotations

import base64
import os

from fastapi.testclient import TestClient
from sqlalchemy import text

from jifen.config import get_settings
from jifen.members.service import find_by_phone
from jifen.programs.service import get_program
from jifen.security import pii
from tests.conftest import api_key

PHONE = "13912345678"


def add_member(client, headers):
    body = {"member_id": "wang", "name": "王小明", "phone": PHONE, "email": "wang@example.com"}
    assert client.post("/v1/members", json=body, headers=headers | {"Idempotency-Key": "w"}).status_code == 201


def raw(factory, column):
    with factory() as s:
        return s.execute(text(f"SELECT {column} FROM members WHERE member_id = 'wang'")).scalar()


def test_stored_encrypted_masked_by_role_found_by_hash(app, factory, db_url):
    with TestClient(app) as client:
        add_member(client, {"Authorization": f"Bearer {api_key(app, 'admin')}"})
        pos = client.get("/v1/members/wang", headers={"Authorization": f"Bearer {api_key(app, 'pos')}"}).json()
        service = client.get("/v1/members/wang",
                             headers={"Authorization": f"Bearer {api_key(app, 'customer_service')}"}).json()
    assert (pos["phone"], pos["name"], pos["email"]) == ("139****5678", "王**", "w***@example.com")
    assert (service["phone"], service["name"]) == (PHONE, "王小明")
    for column in ("phone", "name", "email"):
        assert raw(factory, column).startswith("enc:t1:")
    if db_url.startswith("sqlite"):  # the database file itself
        data = open(db_url.removeprefix("sqlite:///"), "rb").read()
        assert PHONE.encode() not in data and "王小明".encode() not in data
    with factory() as s:
        found = find_by_phone(s, get_program(s, "default"), "139-1234-5678")
        assert found is not None and found.member_id == "wang"


def test_key_rotation_to_sm4(app, factory, monkeypatch):
    import subprocess
    import sys

    with TestClient(app) as client:
        add_member(client, {"Authorization": f"Bearer {api_key(app, 'admin')}"})
    before = raw(factory, "phone")
    sm4 = base64.b64encode(os.urandom(16)).decode()
    keys = f"k2:sm4:{sm4},{os.environ['JIFEN_DATA_KEYS']}"
    env = os.environ | {"JIFEN_DATA_KEYS": keys, "JIFEN_DATABASE_URL": str(factory.kw["bind"].url.render_as_string(
        hide_password=False))}
    done = subprocess.run([sys.executable, "-c", "from jifen.cli import main; main()", "member", "rotate-keys"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = raw(factory, "phone")
    assert before.startswith("enc:t1:") and after.startswith("enc:k2:")
    monkeypatch.setenv("JIFEN_DATA_KEYS", keys)
    get_settings.cache_clear()
    pii.keyring.cache_clear()
    try:
        assert pii.decrypt(after) == PHONE
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        pii.keyring.cache_clear()
