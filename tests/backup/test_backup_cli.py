"""`jifen backup` / `jifen restore` as an operator runs them: one line and exit 1 on bad input, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

JIFEN = [sys.executable, "-c", "from jifen.cli import main; main()"]


def jifen(url: str, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"JIFEN_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(JIFEN + list(args), env=env, capture_output=True, text=True, timeout=300)


def test_backup_then_restore_into_a_new_file_and_the_refusals(sqlite_template, tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    (tmp_path / "live.db").write_bytes(sqlite_template.read_bytes())
    dump = tmp_path / "b.jifen"
    done = jifen(url, "backup", "--to", str(dump))
    assert done.returncode == 0, done.stderr
    assert "backup written" in done.stdout and "default seq=0" in done.stdout
    restored = jifen(url, "restore", "--from", str(dump), "--to", f"sqlite:///{tmp_path / 'new.db'}")
    assert restored.returncode == 0, restored.stderr
    assert "restore OK" in restored.stdout and "chain heads equal to the backup's" in restored.stdout

    for args, message in [
        (("backup", "--to", str(dump)), f"error: {dump} exists: a backup is never overwritten"),
        (("backup", "--to", str(tmp_path / "no" / "b.jifen")), f"error: no directory {tmp_path / 'no'}"),
        (("restore", "--from", str(dump)),
         "error: the target database is not empty (it has tables): --force replaces its contents"),
        (("restore", "--from", str(tmp_path / "none")), f"error: no backup at {tmp_path / 'none'}"),
    ]:
        refused = jifen(url, *args)
        assert refused.returncode == 1 and refused.stderr.strip() == message, refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.jifen", "b.jifen.manifest.json", "live.db", "new.db"]
