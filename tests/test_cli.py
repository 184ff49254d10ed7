"""The `jifen` command as a user runs it: in a subprocess, against a scratch SQLite file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from jifen.demo import FARM, RING

JIFEN = [sys.executable, "-c", "from jifen.cli import main; main()"]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "jifen.db"
    env = os.environ | {"JIFEN_DATABASE_URL": f"sqlite:///{path}"}
    for args in (["db", "upgrade"], ["demo", "--members", "60", "--days", "30"]):
        done = subprocess.run(JIFEN + args, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    return path


def jifen(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = os.environ | {"JIFEN_DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "200"}
    return subprocess.run(JIFEN + list(args), env=env, input=stdin, capture_output=True, text=True, timeout=600)


def test_demo_is_seeded_once_and_verifies(demo_db):
    again = jifen(demo_db, "demo", "--members", "60")
    assert again.returncode == 0 and "already present" in again.stdout
    ok = jifen(demo_db, "ledger", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "ledger OK" in ok.stdout
    with sqlite3.connect(demo_db) as conn:
        types = dict(conn.execute("SELECT type, count(*) FROM journal_entries GROUP BY type").fetchall())
        members = conn.execute("SELECT count(*) FROM members").fetchone()[0]
        invites = conn.execute("SELECT count(*) FROM events WHERE type = 'invite' AND event_id LIKE 'invite-%'"
                               ).fetchone()[0]  # (the referral ring's invitations are named invite:…)
    # The default programme (with invited friends and the scripted abusers) and seed 002's one.
    assert members == 60 + invites + len(FARM + RING) + 200
    assert {"award", "reverse", "hold", "capture"} <= set(types)


def test_member_show(demo_db):
    r = jifen(demo_db, "member", "show", "M100001")
    assert r.returncode == 0 and "available" in r.stdout and "latest entries" in r.stdout
    cobrand = jifen(demo_db, "member", "show", "C200001", "--program", "cobrand")
    assert "platform:" in cobrand.stdout and "brand:" in cobrand.stdout
    missing = jifen(demo_db, "member", "show", "NOPE")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: unknown member 'NOPE'"


def test_apikey_create_prints_the_secret_once(demo_db):
    r = jifen(demo_db, "apikey", "create", "--role", "operator", "--name", "crm")
    assert r.returncode == 0
    secret = r.stdout.strip().splitlines()[-1]
    assert secret.startswith("jf_") and len(secret) > 40
    with sqlite3.connect(demo_db) as conn:
        stored = [row[0] for row in conn.execute("SELECT key_hash FROM api_keys")]
    assert secret not in stored and all(len(h) == 64 for h in stored)
    bad = jifen(demo_db, "apikey", "create", "--role", "wizard")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "unknown role" in bad.stderr


def test_verify_names_the_first_broken_entry(demo_db, tmp_path):
    copy = tmp_path / "tampered.db"
    copy.write_bytes(demo_db.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE postings SET amount = amount + 1 WHERE entry_id = 42 AND amount > 0")
    r = jifen(copy, "ledger", "verify")
    assert r.returncode == 1
    assert "error: ledger broken at [chain] entry 42:" in r.stderr


def test_verify_against_a_published_head(demo_db, tmp_path):
    head = jifen(demo_db, "ledger", "head").stdout.split("hash=")[1].strip()
    assert jifen(demo_db, "ledger", "verify", "--expect-head", head).returncode == 0
    r = jifen(demo_db, "ledger", "verify", "--expect-head", "0" * 64)
    assert r.returncode == 1 and "head" in r.stderr


def test_verify_since_checkpoint(demo_db, tmp_path):
    """A clean verify saves a checkpoint; --since-checkpoint re-hashes only what follows it, so an edit
    before it waits for the next full run."""
    copy = tmp_path / "checkpointed.db"
    copy.write_bytes(demo_db.read_bytes())
    assert jifen(copy, "ledger", "verify", "--processes", "2").returncode == 0
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE journal_entries SET actor = 'x' WHERE id = 42")
    quick = jifen(copy, "ledger", "verify", "--since-checkpoint")
    assert quick.returncode == 0 and "(0 entries after the checkpoints re-hashed)" in quick.stdout
    full = jifen(copy, "ledger", "verify")
    assert full.returncode == 1 and "error: ledger broken at [chain] entry 42:" in full.stderr


def test_jobs_command(demo_db):
    r = jifen(demo_db, "ledger", "jobs")
    assert r.returncode == 0 and "entries written: 0" in r.stdout  # the demo already settled


def test_bad_database_url_is_one_line():
    r = subprocess.run(JIFEN + ["ledger", "verify"], env=os.environ | {"JIFEN_DATABASE_URL": "nosuchdb://x"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1


def test_audit_verify_command(demo_db):
    r = jifen(demo_db, "ledger", "audit")
    assert r.returncode == 0 and "audit log OK" in r.stdout
