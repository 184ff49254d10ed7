"""`verify` catches any hand edit or deletion of journal rows, and names the first broken entry."""

from __future__ import annotations

import pytest

from jifen.ledger import operations as ops
from tests.conftest import m
from tests.support.tampering import delete_entry, tamper


@pytest.fixture
def history(ledger):
    """A small history: awards, a spend, a transfer, a hold, a partial reversal. Returns entry ids."""
    ledger.add_members("A", "B")
    ids = {}
    ids["award"] = ledger.run(lambda sc, s: ops.award(sc, m(sc, "A"), 500)).id
    ids["spend"] = ledger.run(lambda sc, s: ops.spend(sc, m(sc, "A"), 120)).id
    ids["transfer"] = ledger.run(lambda sc, s: ops.transfer(sc, m(sc, "A"), m(sc, "B"), 80)).id
    ids["hold"] = ledger.run(lambda sc, s: ops.hold(sc, m(sc, "A"), 50)).hold_entry_id
    ids["reverse"] = ledger.run(lambda sc, s: ops.reverse(sc, ids["spend"], 20)).id
    ids["last"] = ledger.run(lambda sc, s: ops.award(sc, m(sc, "B"), 7)).id
    assert ledger.verify() == []
    return ids


def test_edited_posting_amount(ledger, history):
    tamper(ledger, "UPDATE postings SET amount = amount + 100 WHERE entry_id = :e AND amount > 0", e=history["spend"])
    problems = ledger.verify()
    assert problems[0].entry_id == history["spend"]
    assert {p.check for p in problems} >= {"chain", "double-entry", "balance"}


def test_edited_entry_points(ledger, history):
    tamper(ledger, "UPDATE journal_entries SET points = 5000 WHERE id = :e", e=history["award"])
    (problem,) = ledger.verify()
    assert (problem.check, problem.entry_id) == ("chain", history["award"])


def test_edited_lot_move(ledger, history):
    tamper(ledger, "UPDATE lot_moves SET amount = amount - 1 WHERE entry_id = :e AND amount < 0", e=history["transfer"])
    problems = ledger.verify()
    assert problems[0].entry_id == history["transfer"]


def test_deleted_entry_in_the_middle(ledger, history):
    delete_entry(ledger, history["transfer"])
    problems = ledger.verify()
    first = problems[0]
    assert first.check == "chain" and first.entry_id == history["hold"] and "sequence gap" in first.message


def test_deleted_last_entry(ledger, history):
    delete_entry(ledger, history["last"])
    problems = ledger.verify()
    assert any(p.check == "chain" and "head" in p.message for p in problems)
    assert any(p.check == "balance" for p in problems)  # B's 7 points now have no postings


def test_edited_balance(ledger, history):
    tamper(ledger, "UPDATE accounts SET balance = balance + 10 WHERE kind = 'available' AND member_pk IS NOT NULL "
           "AND balance > 0")
    problems = ledger.verify()
    assert problems and all(p.check in ("balance", "lots") for p in problems)


def test_edited_lot(ledger, history):
    tamper(ledger, "UPDATE lots SET available = available + 3 WHERE source_entry_id = :e", e=history["award"])
    problems = ledger.verify()
    assert problems and problems[0].check == "lots"


def test_edited_hold_state(ledger, history):
    tamper(ledger, "UPDATE holds SET status = 'released'")
    assert [p.check for p in ledger.verify()] == ["holds"]
