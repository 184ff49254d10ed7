"""The hash chain checked in spans on several processes, and from a checkpoint: each proves what one walk
from the first entry proves, and names the same first broken entry."""

from __future__ import annotations

import pytest

from jifen.db import run_in_transaction
from jifen.ledger import chain_check
from jifen.ledger import operations as ops
from jifen.ledger.chain_check import plan, save_checkpoints
from jifen.ledger.models import ChainHead
from jifen.ledger.verify import verify, verify_ledger
from jifen.programs.service import get_program
from tests.conftest import NOW, m
from tests.support.tampering import delete_entry, entry_at, rehash_from, tamper

ENTRIES = 12  # three spans of four on three processes


@pytest.fixture(autouse=True)
def parallel_however_few(monkeypatch):
    monkeypatch.setattr(chain_check, "PARALLEL_FROM", 0)


@pytest.fixture
def chain(ledger):
    """ENTRIES entries: awards, spends and transfers between two members. Returns the spans of 3 processes."""
    ledger.add_members("A", "B")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "A"), 1000))
    for i in range(ENTRIES - 1):
        step = [lambda sc, s: ops.spend(sc, m(sc, "A"), 10),
                lambda sc, s: ops.transfer(sc, m(sc, "A"), m(sc, "B"), 20),
                lambda sc, s: ops.award(sc, m(sc, "B"), 5)][i % 3]
        ledger.run(step)
    with ledger.factory() as s:
        head = s.get(ChainHead, get_program(s, "default").id)
    assert head.seq == ENTRIES
    spans = plan(head.program_id, 1, ENTRIES, 3)
    assert [(sp.first, sp.last) for sp in spans] == [(1, 4), (5, 8), (9, 12)]
    # Intact before a test tampers with it: checked in one process here (three spawned processes cost seconds,
    # and every test below checks on three); test_an_intact_chain_passes_in_spans checks it on three.
    with ledger.factory() as s:
        assert verify(s) == []
    return spans


def verify_both(ledger, **kw):
    """The problems found on three processes, having checked they are those of one process."""
    with ledger.factory() as s:
        alone = verify(s, **kw)
    with ledger.factory() as s:
        apart = verify(s, processes=3, **kw)
    assert apart == alone
    return apart


def chain_problem(problems):
    first = problems[0]
    assert first.check == "chain"
    return first.entry_id, first.message


def test_an_intact_chain_passes_in_spans(ledger, chain):
    assert verify_both(ledger) == []


def test_edit_in_the_middle_of_the_second_span(ledger, chain):
    tamper(ledger, "UPDATE journal_entries SET points = points + 1 WHERE seq = 6")
    assert chain_problem(verify_both(ledger)) == (entry_at(ledger, 6), "content does not match its hash (altered "
                                                  "entry, posting or lot move)")


def test_edited_posting_in_the_last_span(ledger, chain):
    tamper(ledger, "UPDATE postings SET amount = amount + 1 WHERE amount > 0 AND entry_id = :e", e=entry_at(ledger, 11))
    assert chain_problem(verify_both(ledger))[0] == entry_at(ledger, 11)


@pytest.mark.parametrize("seq", [6, 8, 9])  # inside the second span, its last entry, the third span's first
def test_removed_entry(ledger, chain, seq):
    after = entry_at(ledger, seq + 1)
    delete_entry(ledger, entry_at(ledger, seq))
    entry_id, message = chain_problem(verify_both(ledger))
    assert entry_id == after and message.startswith(f"sequence gap: expected {seq}, found {seq + 1}")


def test_link_broken_where_a_span_starts(ledger, chain):
    """Entries 5… rewritten consistently but from a made-up previous hash: only the link 4 → 5 is wrong,
    and the second span sees it by reading the stored hash of entry 4."""
    rehash_from(ledger, 5, prev_hash="f" * 64)
    assert chain_problem(verify_both(ledger)) == (entry_at(ledger, 5), "previous-hash link broken")


def test_removed_last_entries(ledger, chain):
    for seq in (12, 11):
        delete_entry(ledger, entry_at(ledger, seq))
    problems = verify_both(ledger)
    assert any(p.check == "chain" and "ends at seq 10 but its head says 12" in p.message for p in problems)


@pytest.mark.parametrize("chunk", [3, 5000])  # three entries a query: the removed ones are a whole query's
def test_removed_entries_in_a_row(ledger, chain, chunk, monkeypatch):
    monkeypatch.setattr(chain_check, "CHUNK", chunk)
    after = entry_at(ledger, 7)
    for seq in (4, 5, 6):
        delete_entry(ledger, entry_at(ledger, seq))
    entry_id, message = chain_problem(verify_both(ledger))
    assert entry_id == after and message.startswith("sequence gap: expected 4, found 7")


AWKWARD = ['quote " backslash \\ slash / %s %(x)s', "tab\tnewline\ncr\r \x01 \x1f \x7f", "中文 積分 😀 \u2028 é", "", None]


def test_awkward_text_and_times_hash_alike_everywhere(ledger, chain):
    """On PostgreSQL the server recomputes each hash (chain_check._hashed). On awkward text, empty text, NULLs
    and whole-second times it gets what chain.fields_hash gets; where it renders a value otherwise (a year
    before 1000: '0999' where Python writes '999') the chain's own function decides, so the intact chain passes;
    and an edit of awkward text is still caught."""
    with ledger.factory() as s:
        on_server = s.get_bind().dialect.name == "postgresql"
    for seq, value in enumerate(AWKWARD, start=2):
        tamper(ledger, "UPDATE journal_entries SET reason = :v, actor = :a, reference = :a WHERE seq = :seq",
               v=value, a=value, seq=seq)
    whole_second = NOW.replace(microsecond=0)
    tamper(ledger, "UPDATE journal_entries SET occurred_at = :at WHERE seq = 7", at=whole_second)
    if on_server:
        tamper(ledger, "UPDATE journal_entries SET occurred_at = :at WHERE seq = 8", at=NOW.replace(year=999))
    rehash_from(ledger, 2)  # sealed again by the chain's own function, as the writer would have
    assert verify_both(ledger) == []
    if on_server:
        with ledger.factory() as s:
            conn = s.connection()
            program = get_program(s, "default").id
            rows = chain_check._hashed(conn, program, 1, ENTRIES, 100)
            assert [seq for _, seq, _, stored, server in rows if server != stored] == [8]
            assert all(chain_check._recomputed(conn, program, seq) == stored for _, seq, _, stored, _ in rows)
    tamper(ledger, "UPDATE journal_entries SET reason = :v WHERE seq = 4", v=AWKWARD[2].replace("積", "积"))
    assert chain_problem(verify_both(ledger))[0] == entry_at(ledger, 4)


def checkpoint(ledger):
    with ledger.factory() as s:
        report = verify_ledger(s)
    assert report.problems == []
    run_in_transaction(ledger.factory, lambda s: save_checkpoints(s, report.ends, NOW))
    return report.ends


def more_entries(ledger, n):
    for _ in range(n):
        ledger.run(lambda sc, s: ops.award(sc, m(sc, "A"), 3))


def test_since_checkpoint_rehashes_only_the_entries_after_it(ledger, chain):
    assert list(checkpoint(ledger).values())[0][0] == ENTRIES
    more_entries(ledger, 4)
    with ledger.factory() as s:
        report = verify_ledger(s, processes=3, since_checkpoint=True)
    assert report.problems == [] and report.checked == 4
    assert list(report.ends.values())[0][0] == ENTRIES + 4


def test_since_checkpoint_catches_an_edit_after_it(ledger, chain):
    checkpoint(ledger)
    more_entries(ledger, 6)
    tamper(ledger, "UPDATE journal_entries SET reason = 'x' WHERE seq = :s", s=ENTRIES + 3)
    assert chain_problem(verify_both(ledger, since_checkpoint=True))[0] == entry_at(ledger, ENTRIES + 3)


def test_since_checkpoint_catches_an_edit_of_the_checkpointed_entry(ledger, chain):
    checkpoint(ledger)
    more_entries(ledger, 2)
    tamper(ledger, "UPDATE journal_entries SET actor = 'x' WHERE seq = :s", s=ENTRIES)
    assert chain_problem(verify_both(ledger, since_checkpoint=True))[0] == entry_at(ledger, ENTRIES)


def test_since_checkpoint_catches_a_rewritten_history(ledger, chain):
    """An edit before the checkpoint with every hash after it recomputed: the checkpointed hash differs."""
    checkpoint(ledger)
    more_entries(ledger, 2)
    tamper(ledger, "UPDATE journal_entries SET actor = 'x' WHERE seq = 3")
    rehash_from(ledger, 3)
    entry_id, message = chain_problem(verify_both(ledger, since_checkpoint=True))
    assert entry_id == entry_at(ledger, ENTRIES) and "checkpoint" in message


def test_since_checkpoint_does_not_reprove_what_is_before_it(ledger, chain):
    """What incremental leaves to a full verify: an entry before the checkpoint edited without rehashing."""
    checkpoint(ledger)
    tamper(ledger, "UPDATE journal_entries SET actor = 'x' WHERE seq = 3")
    assert verify_both(ledger, since_checkpoint=True) == []
    assert chain_problem(verify_both(ledger))[0] == entry_at(ledger, 3)


def test_without_a_checkpoint_since_checkpoint_checks_everything(ledger, chain):
    tamper(ledger, "UPDATE journal_entries SET actor = 'x' WHERE seq = 2")
    assert chain_problem(verify_both(ledger, since_checkpoint=True))[0] == entry_at(ledger, 2)
