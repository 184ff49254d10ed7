"""What someone editing the database by hand would do to the ledger, for the tamper-evidence tests."""

from __future__ import annotations

from sqlalchemy import select, text, update

from jifen.ledger.chain import entry_hash
from jifen.ledger.models import ChainHead, JournalEntry, LotMove, Posting


def tamper(ledger, *statements, **params):
    with ledger.factory() as s, s.begin():
        for sql in statements:
            s.execute(text(sql), params)


def delete_entry(ledger, entry_id):
    """What a careful hand would do: remove the entry with its rows, leaving no dangling reference."""
    tamper(ledger, "UPDATE lots SET source_entry_id = NULL WHERE source_entry_id = :e",
           "DELETE FROM lot_moves WHERE entry_id = :e", "DELETE FROM postings WHERE entry_id = :e",
           "DELETE FROM journal_entries WHERE id = :e", e=entry_id)


def rehash_from(ledger, seq, prev_hash=None):
    """A forger's rewrite: every hash from `seq` on recomputed and relinked, the head moved along — starting
    from prev_hash when given (a link the forger could not mend), else from the real previous hash."""
    with ledger.factory() as s, s.begin():
        entries = s.scalars(select(JournalEntry).where(JournalEntry.seq >= seq - 1).order_by(JournalEntry.seq)).all()
        prev = prev_hash or (entries[0].hash if entries[0].seq == seq - 1 else None)
        for e in entries:
            if e.seq < seq:
                continue
            postings = [tuple(r) for r in s.execute(select(Posting.account_id, Posting.amount)
                                                    .where(Posting.entry_id == e.id))]
            moves = [tuple(r) for r in s.execute(select(LotMove.lot_id, LotMove.account_id, LotMove.amount)
                                                 .where(LotMove.entry_id == e.id))]
            e.prev_hash = prev
            e.hash = prev = entry_hash(e, postings, moves)
        s.execute(update(ChainHead).where(ChainHead.program_id == entries[-1].program_id).values(hash=prev))


def entry_at(ledger, seq):
    with ledger.factory() as s:
        return s.scalar(select(JournalEntry.id).where(JournalEntry.seq == seq))
