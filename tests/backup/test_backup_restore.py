"""Backup and restore on both engines: the restored ledger verifies and its chain heads are the manifest's;
bad input (a damaged or missing backup, the other engine, a database with tables) is refused before
anything changes; a backup taken while members earn is one consistent instant."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
from sqlalchemy import select

from jifen.backup import manifest as mf
from jifen.backup.service import backup, restore
from jifen.db import make_engine, make_sessionmaker
from jifen.errors import Conflict, InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry
from tests.conftest import Ledger, m


def _activity(ledger: Ledger, members: int = 5) -> None:
    ids = [f"B{i}" for i in range(members)]
    ledger.add_members(*ids)
    for n, mid in enumerate(ids):
        ledger.run(lambda sc, s, mid=mid, n=n: ops.award(sc, m(sc, mid), 100 * (n + 1), reference=f"order-{mid}"))
    ledger.run(lambda sc, s: ops.spend(sc, m(sc, "B1"), 150))
    ledger.run(lambda sc, s: ops.transfer(sc, m(sc, ids[-1]), m(sc, "B0"), 40))


def _balances(url: str, ids) -> dict:
    engine = make_engine(url)
    try:
        other = Ledger(make_sessionmaker(engine))
        return {mid: other.balances(mid) for mid in ids}
    finally:
        engine.dispose()


def test_a_restored_backup_verifies_with_the_chain_heads_of_the_manifest(db_url, ledger, target_url, tmp_path):
    _activity(ledger)
    dump = tmp_path / "jifen.backup"
    written = backup(db_url, dump)
    assert written.entries == 7 and written.heads["default"]["seq"] == 7
    assert json.loads(mf.manifest_path(dump).read_text())["heads"] == written.heads

    result = restore(dump, target_url)
    assert result.ok and result.problems == []
    assert result.found.heads == written.heads and result.found.entries == 7
    ids = [f"B{i}" for i in range(5)]
    assert _balances(target_url, ids) == _balances(db_url, ids)
    assert _balances(target_url, ["B1"])["B1"]["available"] == 200 - 150


def test_a_database_with_tables_is_replaced_only_when_forced(db_url, ledger, target_url, tmp_path):
    _activity(ledger)
    dump = tmp_path / "jifen.backup"
    backup(db_url, dump)
    restore(dump, target_url)
    with make_engine(target_url).begin() as conn:  # the target moves on after the restore
        conn.exec_driver_sql("DELETE FROM chain_checkpoints")
        last = conn.exec_driver_sql("SELECT max(id) FROM journal_entries").scalar()
    with pytest.raises(Conflict) as refused:
        restore(dump, target_url)
    assert refused.value.code == "target_not_empty"
    with make_engine(target_url).connect() as conn:  # nothing changed: the checkpoints are still gone
        assert conn.exec_driver_sql("SELECT count(*) FROM chain_checkpoints").scalar() == 0
    forced = restore(dump, target_url, force=True)
    assert forced.ok and forced.found.entries == 7
    with make_engine(target_url).connect() as conn:
        assert conn.exec_driver_sql("SELECT max(id) FROM journal_entries").scalar() == last


def test_a_damaged_or_foreign_backup_is_refused_before_anything_changes(db_url, ledger, target_url, tmp_path):
    _activity(ledger, members=2)
    dump = tmp_path / "jifen.backup"
    backup(db_url, dump)
    with pytest.raises(Conflict, match="never overwritten"):
        backup(db_url, dump)
    other_engine = f"sqlite:///{tmp_path / 'x.db'}" if db_url.startswith("postgresql") else \
        "postgresql+psycopg://postgres@127.0.0.1:5432/jifen_never_created"
    with pytest.raises(InvalidRequest) as foreign:
        restore(dump, other_engine)
    assert foreign.value.code == "engine_mismatch"
    raw = bytearray(dump.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    dump.write_bytes(bytes(raw))
    with pytest.raises(InvalidRequest) as damaged:
        restore(dump, target_url)
    assert damaged.value.code == "backup_damaged"
    mf.manifest_path(dump).unlink()
    with pytest.raises(InvalidRequest) as lost:
        restore(dump, target_url)
    assert lost.value.code == "manifest_missing"
    with pytest.raises(InvalidRequest) as missing:
        restore(tmp_path / "nothing.backup", target_url)
    assert missing.value.code == "backup_missing"
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "restored.db").exists()


def test_an_altered_journal_in_the_backup_fails_the_restore_verify(sqlite_template, tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    (tmp_path / "src.db").write_bytes(sqlite_template.read_bytes())
    engine = make_engine(url)
    _activity(Ledger(make_sessionmaker(engine)), members=3)
    engine.dispose()
    dump = tmp_path / "jifen.backup"
    backup(url, dump)
    with sqlite3.connect(dump) as conn:  # someone edits an award in the backup and re-seals its manifest
        conn.execute("UPDATE journal_entries SET points = points + 1 WHERE id = 2")
    raw = json.loads(mf.manifest_path(dump).read_text())
    mf.seal(mf.Manifest(**{k: v for k, v in raw.items() if k not in ("sha256", "bytes")}), dump)
    result = restore(dump, f"sqlite:///{tmp_path / 'restored.db'}")
    assert not result.ok and result.problems[0].startswith("[chain] entry 2")


def test_a_head_other_than_the_manifests_fails_the_restore(db_url, ledger, target_url, tmp_path):
    _activity(ledger, members=2)
    dump = tmp_path / "jifen.backup"
    backup(db_url, dump)
    path = mf.manifest_path(dump)
    raw = json.loads(path.read_text())
    raw["heads"]["default"]["hash"] = "0" * 64  # the head published at backup time is not this backup's
    path.write_text(json.dumps(raw))
    result = restore(dump, target_url)
    assert result.problems == [] and not result.heads_match and not result.ok


def test_a_backup_taken_while_members_earn_is_one_consistent_instant(db_url, ledger, target_url, tmp_path):
    ledger.add_members("W1", "W2")
    stop, written = threading.Event(), []

    def earn():
        n = 0
        while not stop.is_set() or n < 40:
            ledger.run(lambda sc, s, n=n: ops.award(sc, m(sc, f"W{n % 2 + 1}"), 10, reference=f"live-{n}"))
            written.append(n)
            n += 1

    writer = threading.Thread(target=earn)
    writer.start()
    while len(written) < 20:
        threading.Event().wait(0.01)
    dump = tmp_path / "jifen.backup"
    manifest = backup(db_url, dump)
    stop.set()
    writer.join()
    result = restore(dump, target_url)
    assert result.ok, result.problems
    assert 20 <= manifest.entries < len(written) + 1
    with make_engine(target_url).connect() as conn:
        rows = conn.execute(select(JournalEntry.seq, JournalEntry.points)).all()
    assert sorted(seq for seq, _ in rows) == list(range(1, manifest.entries + 1))  # a prefix of the chain, no gap
