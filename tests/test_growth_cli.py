"""`jifen recommend` and `jifen automations` as a user runs them, on the demo programme (a subprocess each)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from jifen import automations
from tests.test_cli import demo_db, jifen  # noqa: F401 - the module-scoped demo database fixture

EXAMPLES = Path(automations.__file__).parent / "examples.yaml"


def test_recommend_commands(demo_db):  # noqa: F811
    done = jifen(demo_db, "recommend", "evaluate", "--k", "3", "--holdout-days", "10", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["methods"]) == {"popularity", "popularity in tier", "collaborative filtering", "model"}
    start, end = report["held_out"]["from"].replace("T", " "), report["held_out"]["to"].replace("T", " ")
    with sqlite3.connect(demo_db) as conn:
        held = conn.execute("SELECT count(*), count(DISTINCT member_pk) FROM redemptions WHERE created_at >= ? "
                            "AND created_at < ?", (start, end)).fetchone()
    assert (report["redemptions"], report["members"]) == held
    for m in report["methods"].values():
        assert 0 <= m["precision_at_k"] <= m["hit_rate"] <= 1
    table = jifen(demo_db, "recommend", "evaluate", "--k", "2", "--holdout-days", "10")
    assert table.returncode == 0 and "precision@2" in table.stdout and "popularity" in table.stdout
    assert "seed 003 aims at 70 %" in table.stdout and "took one of its 2 suggestions" in table.stdout
    member = jifen(demo_db, "recommend", "member", "M100001", "--k", "2")
    assert member.returncode == 0, member.stderr
    picks = json.loads(member.stdout)
    assert picks["member_id"] == "M100001" and len(picks["rewards"]) == 2
    unknown = jifen(demo_db, "recommend", "member", "NOPE")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: unknown member 'NOPE'"


def counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM outbox_messages WHERE topic = 'marketing.message'), "
                            "(SELECT count(*) FROM automation_runs), (SELECT count(*) FROM automations)").fetchone()


def test_automation_commands(demo_db, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.yaml"
    bad.write_text("code: bad\nname: bad\ntrigger: schedule\nevery: day\ncondition: event.amount > 1\n"
                   "actions: [{type: message, channels: [sms], title: t, body: b}]\n", encoding="utf-8")
    refused = jifen(demo_db, "automations", "save", str(bad))
    assert refused.returncode == 1 and refused.stderr.strip() == (
        "error: condition: an automation sees member and tier, not event")
    before = counts(demo_db)
    assert before[2] == 0
    saved = jifen(demo_db, "automations", "save", str(EXAMPLES))
    assert saved.returncode == 0 and "saved 4 automation(s)" in saved.stdout, saved.stderr
    dry = jifen(demo_db, "automations", "run", "low_balance_sms", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["matched"] == len(report["members"]) > 0
    assert all(m["facts"]["balance"] < 200 and m["facts"]["days_since_purchase"] >= 30 for m in report["members"])
    assert counts(demo_db) == (before[0], before[1], 4)  # a dry run changes nothing
    done = jifen(demo_db, "automations", "run", "low_balance_sms", "--json")
    acted = json.loads(done.stdout)
    assert acted["acted"] == report["matched"] and counts(demo_db) == (before[0] + acted["acted"], 1, 4)
    again = json.loads(jifen(demo_db, "automations", "run", "low_balance_sms", "--json").stdout)
    assert again["acted"] == 0 and counts(demo_db)[0] == before[0] + acted["acted"]
    runs = jifen(demo_db, "automations", "runs", "low_balance_sms")
    assert runs.returncode == 0 and "manual" in runs.stdout
    assert "low_balance_sms" in jifen(demo_db, "automations", "list").stdout
    missing = jifen(demo_db, "automations", "run", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: unknown automation 'nope'"
