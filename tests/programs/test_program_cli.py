"""`jifen program`, `jifen rules` and `jifen tiers` as a user runs them, on the demo history."""

from __future__ import annotations

import json
import re
import sqlite3

from jifen.programs.config import EXAMPLES
from tests.test_cli import demo_db, jifen  # noqa: F401 - the module-scoped demo database fixture


def test_demo_awards_follow_seed_001_exactly(demo_db):  # noqa: F811
    """Every demo purchase by a member of the entry tier earned floor(¥) + 10% (rounded down) over ¥100 (outside
    the demo's double-points campaign)."""
    with sqlite3.connect(demo_db) as conn:
        rows = conn.execute("SELECT amount, points, result FROM events WHERE type = 'purchase' AND program_id = "
                            "(SELECT id FROM programs WHERE code = 'default')").fetchall()
        checkins = conn.execute("SELECT points FROM events WHERE type = 'check_in'").fetchall()
    plain = [(a, p) for a, p, r in rows if json.loads(r)["member_tier"] == "normal" and "campaign_" not in r]
    assert len(plain) > 100
    for amount, points in plain:
        base = int(float(amount) + 1e-9)
        assert points == base + (base // 10 if float(amount) > 100 else 0), (amount, points)
    assert {p for (p,) in checkins} == {5, 55}


def test_applying_renames_a_wallet_the_demo_names_in_its_script(demo_db):  # noqa: F811
    # `db upgrade` creates the default programme with a 積分 wallet; the zh-Hans demo's file names it 积分.
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("SELECT code, name FROM wallets ORDER BY id").fetchone() == ("points", "积分")


def test_apply_is_all_or_nothing_with_the_bad_field_named(demo_db, tmp_path):  # noqa: F811
    text = (EXAMPLES / "seed001.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("name: 星享會員", "name: 改名了").replace(
        'condition: event.amount > 100', 'condition: event.amount >> 100'), encoding="utf-8")
    r = jifen(demo_db, "program", "apply", str(bad))
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "rules.rules.1.condition" in r.stderr and "column 15" in r.stderr
    assert "星享会员" in jifen(demo_db, "program", "show").stdout  # nothing applied (the zh-Hans demo's name)
    broken = tmp_path / "broken.yaml"
    broken.write_text("code: [unclosed", encoding="utf-8")
    r = jifen(demo_db, "program", "apply", str(broken))
    assert r.returncode == 1 and "not valid YAML at line 1" in r.stderr
    missing = jifen(demo_db, "program", "apply", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_apply_versions_and_show(demo_db, tmp_path):  # noqa: F811
    # (the demo's names are in Simplified and it launched a campaign: the seed's own text is a new version once)
    first = jifen(demo_db, "program", "apply", str(EXAMPLES / "seed001.yaml"))
    assert first.returncode == 0 and "rules version" in first.stdout
    n = int(re.search(r"rules version (\d+)", first.stdout).group(1))
    same = jifen(demo_db, "program", "apply", str(EXAMPLES / "seed001.yaml"))
    assert same.returncode == 0 and "rules unchanged" in same.stdout
    changed = tmp_path / "double.yaml"
    changed.write_text((EXAMPLES / "seed001.yaml").read_text(encoding="utf-8").replace(
        'effective_from: "2024-01-01T00:00:00+08:00"', 'effective_from: "2030-01-01T00:00:00+08:00"').replace(
        "award: {fixed: 50}", "award: {fixed: 80}", 1), encoding="utf-8")
    r = jifen(demo_db, "program", "apply", str(changed))
    assert r.returncode == 0 and f"rules version {n + 1}" in r.stdout
    versions = jifen(demo_db, "rules", "versions")
    assert "announced" in versions.stdout and "2030-01-01" in versions.stdout
    shown = json.loads(jifen(demo_db, "program", "show").stdout)
    assert shown["rules_in_force"]["version"] != n + 1  # announced
    # The tier ladder shown is the one in force, carried by the version in force (the demo's own, in its script).
    assert shown["tiers"] == shown["rules_in_force"]["rules"]["tiers"] and shown["tiers"]["levels"][1]["name"] == "银卡"


def test_simulate_recompute_and_evaluate(demo_db, tmp_path):  # noqa: F811
    draft = tmp_path / "draft.yaml"
    draft.write_text("rules:\n  - {code: base, events: [purchase], award: {per_yuan: 2}}\n", encoding="utf-8")
    r = jifen(demo_db, "rules", "simulate", str(draft), "--from", "2020-01-01", "--to", "2030-12-31", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["events"] > 100 and report["points"]["draft"] > report["points"]["baseline"] > 0
    assert report["top_rules"][0]["rule"] == "base"
    table = jifen(demo_db, "rules", "simulate", str(draft), "--from", "2020-01-01", "--to", "2030-12-31")
    assert "liability ¥" in table.stdout and "members affected" in table.stdout
    bad = jifen(demo_db, "rules", "simulate", str(draft), "--from", "2026-13-01", "--to", "2030-12-31")
    assert bad.returncode == 1 and "not a date" in bad.stderr
    dry = jifen(demo_db, "rules", "recompute", "--from", "2020-01-01", "--to", "2030-12-31")
    assert dry.returncode == 0 and "would correct" in dry.stdout and "0 events of 0 members" in dry.stdout
    ev = jifen(demo_db, "tiers", "evaluate")
    assert ev.returncode == 0 and "members: " in ev.stdout
    assert jifen(demo_db, "ledger", "verify").returncode == 0


def test_events_import_a_file_and_resume(demo_db, tmp_path):  # noqa: F811
    import datetime as dt

    at = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    rows = [{"event_id": f"f{i}", "member_id": "M100002" if i != 3 else "GHOST", "type": "purchase",
             "amount": "150.00", "order_id": f"F{i}", "occurred_at": at} for i in range(5)]
    good = tmp_path / "events.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    r = jifen(demo_db, "events", "import", str(good), "--batch", "2", "--rejects", str(tmp_path / "rej.jsonl"))
    assert r.returncode == 2  # some refused
    assert "4 processed (+" in r.stdout and "1 refused" in r.stdout and "unknown_member" in r.stderr
    assert json.loads((tmp_path / "rej.jsonl").read_text(encoding="utf-8"))["event"]["event_id"] == "f3"
    again = jifen(demo_db, "events", "import", str(good))
    assert "0 processed" in again.stdout and "4 already taken" in again.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0] | {"event_id": "new"}) + "\n" + json.dumps(rows[0] | {"amount": "-1"}) + "\n",
                   encoding="utf-8")
    with sqlite3.connect(demo_db) as conn:
        before = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    refused = jifen(demo_db, "events", "import", str(bad))
    assert refused.returncode == 1 and "bad.jsonl:2: amount" in refused.stderr
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == before  # nothing sent


def test_analytics_commands(demo_db, tmp_path):  # noqa: F811
    kpis = jifen(demo_db, "analytics", "kpis", "--from", "2020-01-01", "--to", "2030-12-31", "--format", "csv")
    assert kpis.returncode == 0, kpis.stderr
    header, row = kpis.stdout.strip().splitlines()[:2]
    assert header.startswith("scope,issued,redeemed") and int(row.split(",")[1]) > 0
    assert jifen(demo_db, "analytics", "kpis", "--from", "2020-01-01", "--to", "2030-12-31",
                 "--by", "colour").returncode == 1
    rfm = jifen(demo_db, "analytics", "rfm", "--format", "json")
    assert rfm.returncode == 0 and {"segment", "rfm", "recency"} <= set(json.loads(rfm.stdout)[0])
    bad = tmp_path / "t.csv"
    bad.write_text("who,when\nx,y\n", encoding="utf-8")
    r = jifen(demo_db, "analytics", "clv", "--transactions", str(bad))
    assert r.returncode == 1 and "member_id, occurred_at" in r.stderr
    good = tmp_path / "tx.csv"
    lines = ["member_id,occurred_at,amount"] + [f"c{i},2026-0{1 + k}-1{i % 9}T10:00:00,{10 + i + k}"
                                                for i in range(30) for k in range(1 + i % 4)]
    good.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fit = jifen(demo_db, "analytics", "clv", "--transactions", str(good), "--calibration-end", "2026-06-30")
    assert fit.returncode == 0, fit.stderr
    body = json.loads(fit.stdout)
    assert set(body["bgnbd"]) == {"r", "alpha", "a", "b"} and len(body["members"]) == 30
    out = jifen(demo_db, "export", "parquet", str(tmp_path / "pq"))
    assert out.returncode == 0 and (tmp_path / "pq" / "entries.parquet").exists()
