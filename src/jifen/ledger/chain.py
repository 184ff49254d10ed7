"""Hash chain over journal entries: each entry's hash covers its fields, postings, lot moves and the
previous entry's hash, so editing or deleting any journal row breaks the chain from that entry on."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jifen.ledger.models import JournalEntry

GENESIS = "0" * 64


def _ts(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry: JournalEntry, postings: list[tuple[int, int]], moves: list[tuple[int, int, int]]) -> str:
    """postings: (account_id, amount); moves: (lot_id, account_id, amount); order does not matter."""
    body = [
        entry.id,
        entry.program_id,
        entry.seq,
        entry.type,
        entry.wallet_id,
        entry.points,
        entry.member_pk,
        entry.counterparty_pk,
        entry.reverses_entry_id,
        entry.hold_id,
        entry.reason,
        entry.actor,
        entry.reference,
        _ts(entry.occurred_at),
        _ts(entry.recorded_at),
        entry.prev_hash,
        sorted(postings),
        sorted(moves),
    ]
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()
