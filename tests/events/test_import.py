"""`jifen events import FILE`: a file of events, validated whole first, sent by one process or several."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker
from jifen.events.jsonl import part_of
from jifen.events.models import Event
from jifen.flows.file_import import import_file
from jifen.ledger.models import Account
from jifen.ledger.verify import verify
from jifen.members.models import Member
from tests.conftest import truncate_all
from tests.support.intake import add_members, configure
from tests.test_cli import jifen

MEMBERS = [f"P{i}" for i in range(10)]


def prepare(url: str) -> None:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    configure(factory)
    add_members(factory, *MEMBERS)
    engine.dispose()


def fresh(db_url: str, request, tmp_path: Path, name: str) -> str:
    """A database with seed 001 and the members, nothing imported: a new file on SQLite, the same
    (emptied) database on PostgreSQL."""
    if db_url.startswith("sqlite"):
        path = tmp_path / f"{name}.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        truncate_all(db_url)
        url = db_url
    prepare(url)
    return url


def write_events(path: Path, n: int = 60, *, tag: str = "e") -> list[dict]:
    """Purchases of the last days, large enough that members reach silver (×1.1) and gold (×1.3) part-way
    through the file: each member's later events are priced by what their earlier ones did."""
    rng, now = random.Random(7), dt.datetime.now(dt.UTC)
    rows = [{"event_id": f"{tag}{i}", "member_id": rng.choice(MEMBERS), "type": "purchase",
             "amount": f"{rng.randint(5000, 150000) / 100:.2f}", "order_id": f"O{tag}{i}",
             "occurred_at": (now - dt.timedelta(days=5) + dt.timedelta(minutes=7 * i)).isoformat(),
             "attributes": {"device_id": "phone-x"}} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def state(url: str) -> dict:
    """What an import leaves behind: each event's points, each member's tier and balance (every kind)."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        problems = verify(s)
        found = {
            "points": dict(s.execute(select(Event.event_id, Event.points)).all()),
            "tiers": dict(s.execute(select(Member.member_id, Member.tier)).all()),
            "balances": dict(s.execute(select(Member.member_id, func.sum(Account.balance)).join(
                Account, Account.member_pk == Member.id).group_by(Member.member_id)).all()),
        }
    engine.dispose()
    assert problems == [], problems[:3]
    return found


def test_two_processes_give_what_one_process_gives(db_url, request, tmp_path):
    file = tmp_path / "events.jsonl"
    rows = write_events(file)
    assert {part_of(r["member_id"], 2) for r in rows} == {0, 1}  # both processes have members to send

    one_url = fresh(db_url, request, tmp_path, "one")
    one = import_file(one_url, file, batch=7, processes=1)
    by_one = state(one_url)
    two_url = fresh(db_url, request, tmp_path, "two")
    two = import_file(two_url, file, batch=7, processes=2)
    by_two = state(two_url)

    assert one.events == two.events == 60
    assert one.tally.counts == two.tally.counts == {"processed": 60}
    assert one.tally.points == two.tally.points == sum(by_one["balances"].values()) > 0
    assert {"silver", "gold"} <= set(by_one["tiers"].values())  # the tier multiplier was in play
    assert by_two == by_one


def test_the_cli_refuses_a_bad_line_and_sends_nothing(tmp_path, sqlite_template):
    db = tmp_path / "jifen.db"
    shutil.copy(sqlite_template, db)
    prepare(f"sqlite:///{db}")
    rows = write_events(tmp_path / "good.jsonl", 4)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]) + "\n"  # a blank line is skipped
                   + json.dumps(rows[2] | {"amount": "-1"}) + "\n" + json.dumps(rows[3]) + "\n", encoding="utf-8")
    for processes in ("1", "2"):
        r = jifen(db, "events", "import", str(bad), "--processes", processes)
        assert r.returncode == 1
        assert f"{bad}:4: amount: Input should be greater than or equal to 0 (nothing sent)" in r.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_the_cli_imports_with_processes_and_a_rerun_replays(tmp_path, sqlite_template):
    db = tmp_path / "jifen.db"
    shutil.copy(sqlite_template, db)
    prepare(f"sqlite:///{db}")
    file = tmp_path / "events.jsonl"
    rows = write_events(file, 12)
    rows[5]["member_id"] = "GHOST"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"

    first = jifen(db, "events", "import", str(file), "--processes", "2", "--batch", "3", "--rejects", str(rejects))
    assert first.returncode == 2, first.stderr  # some refused
    assert "12 events: 11 processed (+" in first.stdout and "1 refused" in first.stdout
    assert "refused e5 (line 6): unknown_member" in first.stderr
    refused = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(x["line"], x["event"]["event_id"], x["error"]["code"]) for x in refused] == [(6, "e5", "unknown_member")]

    again = jifen(db, "events", "import", str(file), "--processes", "2")
    assert "12 events: 0 processed (+0 points), 11 already taken, 1 refused" in again.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 11


def test_an_empty_file_sends_nothing_and_starts_no_process(tmp_path, sqlite_template):
    db = tmp_path / "jifen.db"
    shutil.copy(sqlite_template, db)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    outcome = import_file(f"sqlite:///{db}", empty, processes=2)
    assert outcome.events == 0 and outcome.tally.counts == {} and outcome.tally.points == 0
