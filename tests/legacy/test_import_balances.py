"""A legacy programme's balances and lots into the ledger: as the file says, once, resumable after an
interruption, with the diff of source against result; a bad file is refused whole with its line number."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker
from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry, Lot
from jifen.legacy import load as loader
from jifen.legacy.diff import diff
from jifen.legacy.source import BadLine, read_balances
from jifen.members.models import Member
from jifen.programs.service import get_program
from tests.conftest import NOW, Ledger, m

UTC = dt.UTC
FILE = """member_id,balance,points,earned_at,expires_at
L1,1500,,,
L2,800,500,2025-01-10,2027-01-10
L3,0,,,
L2,,300,2025-06-01T12:00:00+08:00,2027-06-30
L4,250,,2026-03-01,
"""


def read(factory, path, now=NOW):
    with factory() as s:
        return read_balances(path, get_program(s, "default"), now)


def run(factory, path, batch=1000, now=NOW):
    return loader.load(factory, read(factory, path, now), program="default", wallet=None, now=now, batch=batch)


def lots_of(ledger: Ledger, member_id: str):
    with ledger.factory() as s:
        return [(lot.points, lot.available, lot.earned_at, lot.expires_at) for lot in s.scalars(
            select(Lot).where(Lot.member_pk == ledger.member(member_id).id).order_by(Lot.id))]


def legacy_entries(factory) -> dict[str, int]:
    with factory() as s:
        return dict(s.execute(select(Member.member_id, func.count()).select_from(JournalEntry)
                              .join(Member, Member.id == JournalEntry.member_pk)
                              .where(JournalEntry.reference.like("legacy:%")).group_by(Member.member_id)).all())


def test_balances_and_lots_arrive_as_the_file_says(factory, tmp_path):
    path = tmp_path / "legacy.csv"
    path.write_text(FILE)
    report = run(factory, path)
    assert (report.members, report.created, report.written, report.entries, report.points) == (4, 4, 3, 4, 2550)
    ledger = Ledger(factory)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert lots_of(ledger, "L2") == [
        (500, 500, dt.datetime(2025, 1, 10, tzinfo=shanghai).astimezone(UTC),
         dt.datetime(2027, 1, 10, tzinfo=shanghai).astimezone(UTC)),
        (300, 300, dt.datetime(2025, 6, 1, 4, tzinfo=UTC), dt.datetime(2027, 6, 30, tzinfo=shanghai).astimezone(UTC))]
    (l1,) = lots_of(ledger, "L1")  # a balance alone: one lot earned at the import, the programme's 24 months
    assert l1[:3] == (1500, 1500, NOW) and l1[3] is not None and l1[3] > NOW + dt.timedelta(days=700)
    assert ledger.balances("L3")["available"] == 0 and lots_of(ledger, "L3") == []
    assert ledger.balances("L4")["available"] == 250
    assert legacy_entries(factory) == {"L1": 1, "L2": 2, "L4": 1}
    with factory() as s:
        result = diff(s, read(factory, path), program="default", wallet=None)
    assert result.mismatches == [] and result.totals() == {
        "members": 4, "rows": 5, "source_points": 2550, "imported_points": 2550, "balance_points": 2550,
        "mismatches": 0}
    assert ledger.verify() == []


def test_an_interrupted_import_resumes_and_writes_each_member_once(factory, tmp_path, monkeypatch):
    path = tmp_path / "legacy.csv"
    path.write_text("member_id,balance\n" + "".join(f"P{i:03d},{10 + i}\n" for i in range(50)))
    real, calls = loader.award_many, []

    def third_batch_dies(sc, items):
        calls.append(len(items))
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return real(sc, items)

    monkeypatch.setattr(loader, "award_many", third_batch_dies)
    with pytest.raises(RuntimeError, match="power cut"):
        run(factory, path, batch=8)
    assert len(legacy_entries(factory)) == 16  # two batches committed, the third rolled back whole
    with factory() as s:  # (its members too: created in the batch's transaction)
        assert s.scalar(select(func.count()).select_from(Member).where(Member.member_id.like("P%"))) == 16
    again = run(factory, path, batch=8)
    assert (again.skipped, again.written, again.created) == (16, 34, 34)
    assert legacy_entries(factory) == {f"P{i:03d}": 1 for i in range(50)}
    ledger = Ledger(factory)
    assert [ledger.balances(f"P{i:03d}")["available"] for i in range(50)] == [10 + i for i in range(50)]
    assert run(factory, path).written == 0  # a third run finds everything done
    assert ledger.verify() == []


def test_the_diff_lists_members_missing_or_different(factory, tmp_path):
    ledger = Ledger(factory)
    ledger.add_members("D2")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "D2"), 40))  # a member with points before the migration
    path = tmp_path / "legacy.csv"
    path.write_text("member_id,balance\nD1,100\nD2,60\n")
    members = read(factory, path)
    with factory() as s:
        before = diff(s, members, program="default", wallet=None)
    assert [(x.member_id, x.status, x.imported, x.balance) for x in before.lines] == [
        ("D1", "missing", None, None), ("D2", "differs", 0, 40)]
    run(factory, path)
    with factory() as s:
        after = diff(s, members, program="default", wallet=None)
    assert [(x.member_id, x.status, x.imported, x.balance) for x in after.lines] == [
        ("D1", "ok", 100, 100), ("D2", "differs", 60, 100)]
    assert after.totals()["mismatches"] == 1 and after.totals()["source_points"] == 160


@pytest.mark.parametrize(("content", "message"), [
    ("id,balance\nX,1\n", "line 1: the header must name member_id, balance"),
    ("member_id,balance\nA,10\nB,ten\n", "line 3: balance 'ten' is not a whole number"),
    ("member_id,balance\nA,-5\n", "line 2: balance must be at least 0, not -5"),
    ("member_id,balance\nA,10\n,4\n", "line 3: member_id must be 1 to 64 characters"),
    ("member_id,balance\nA,10,7\n", "line 2: expected 2 fields"),
    ("member_id,balance\nA,1\nerased-x,1\n", "line 3: member ids starting with 'erased-' are reserved"),
    ("member_id,balance,points\nA,10,4\nA,,5\n", "line 2: member 'A': its lots add up to 9, not its balance 10"),
    ("member_id,balance,points\nA,10,4\nA,11,6\n", "line 3: member 'A' has balance 10 on line 2, 11 here"),
    ("member_id,balance,points\nA,,4\n", "line 2: the first row of member 'A' needs its balance"),
    ("member_id,balance,points\nA,10,10\nA,10,\n", "line 3: member 'A': either every row is a lot"),
    ("member_id,balance,points\nA,10,0\n", "line 2: points must be above 0, not 0"),
    ("member_id,balance,earned_at\nA,10,2026-07-01\n", "line 2: earned_at 2026-06-30T16:00:00+00:00 is after"),
    ("member_id,balance,earned_at\nA,10,2023-01-05\n", "line 2: points earned 2023-01-04 expired on 2025-01-04"),
    ("member_id,balance,expires_at\nA,10,2026-05-01\n", "line 2: expires_at 2026-04-30T16:00:00+00:00 must be"),
    ("member_id,balance,expires_at\nA,10,soon\n", "line 2: expires_at 'soon' is not a date"),
])
def test_a_bad_line_is_named_and_nothing_is_read_further(sqlite_template, tmp_path, content, message):
    path = tmp_path / "legacy.csv"
    path.write_text(content)
    engine = make_engine(f"sqlite:///{sqlite_template}")  # (only read: the programme's timezone and expiry)
    with pytest.raises(BadLine) as bad:
        read(make_sessionmaker(engine), path)
    engine.dispose()
    assert bad.value.message.startswith(f"legacy.csv {message}"), bad.value.message
    assert bad.value.message.endswith("; nothing was imported") and bad.value.code == "invalid_line"
