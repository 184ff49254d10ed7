"""`jifen import balances` as an operator runs it: one line and exit 1 for a bad file (nothing written), exit 2
when the diff finds mismatches, and on PostgreSQL an import killed mid-way (SIGKILL) that a re-run completes
with each member's balance exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import create_engine, text

JIFEN = [sys.executable, "-c", "from jifen.cli import main; main()"]


def jifen(url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    env = os.environ | {"JIFEN_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(JIFEN + list(args), env=env, capture_output=True, text=True, timeout=600, **kw)


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_bad_file_then_import_then_mismatch(sqlite_template, tmp_path):
    url = f"sqlite:///{tmp_path / 'j.db'}"
    (tmp_path / "j.db").write_bytes(sqlite_template.read_bytes())
    bad = tmp_path / "bad.csv"
    bad.write_text("member_id,balance\nA,10\nB,10.5\n")
    refused = jifen(url, "import", "balances", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: bad.csv line 3: balance '10.5' is not a whole number; "
                                      "nothing was imported")
    assert count(url, "SELECT count(*) FROM members") == 0
    good = tmp_path / "good.csv"
    good.write_text("member_id,balance\nA,10\nB,20\n")
    done = jifen(url, "import", "balances", str(good))
    assert done.returncode == 0, done.stderr
    assert "2 members written (2 entries, 30 points), 2 created" in done.stdout
    assert "30 points imported, 30 in their balances; 0 mismatches" in done.stdout
    changed = tmp_path / "changed.csv"  # the legacy side moved on: B has 25 now
    changed.write_text("member_id,balance\nA,10\nB,25\n")
    report = tmp_path / "diff.csv"
    check = jifen(url, "import", "balances", str(changed), "--check", "--report", str(report))
    assert check.returncode == 2 and "1 mismatches" in check.stdout
    assert check.stderr.strip() == "differs: B source 25, imported 20, balance 20"
    assert report.read_text().splitlines()[1:] == ["A,1,10,10,10,ok", "B,1,25,20,20,differs"]


def test_an_import_killed_mid_way_completes_on_rerun_exactly_once(pg_only_url, tmp_path):
    members = 3000
    path = tmp_path / "legacy.csv"
    path.write_text("member_id,balance\n" + "".join(f"K{i:05d},{i + 1}\n" for i in range(members)))
    env = os.environ | {"JIFEN_DATABASE_URL": pg_only_url}
    proc = subprocess.Popen(JIFEN + ["import", "balances", str(path), "--batch", "50"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    legacy = "SELECT count(*) FROM journal_entries WHERE reference LIKE 'legacy:%'"
    try:
        while count(pg_only_url, legacy) < 200 and proc.poll() is None:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    written = count(pg_only_url, legacy)
    assert 200 <= written < members and written % 50 == 0  # killed mid-way: whole batches only
    rerun = jifen(pg_only_url, "import", "balances", str(path), "--batch", "50")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{members - written:,} members written" in rerun.stdout
    assert f"{written:,} already imported earlier" in rerun.stdout
    assert count(pg_only_url, "SELECT count(DISTINCT reference) FROM journal_entries WHERE reference LIKE 'legacy:%'"
                 ) == count(pg_only_url, legacy) == members
    assert count(pg_only_url, "SELECT sum(a.balance) FROM accounts a JOIN members m ON m.id = a.member_pk "
                              "WHERE a.kind = 'available' AND m.member_id LIKE 'K%'") == members * (members + 1) // 2
    verify = jifen(pg_only_url, "ledger", "verify")
    assert verify.returncode == 0, verify.stderr
