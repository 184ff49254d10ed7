"""Many awards in one go: the entries, lots, lot moves, postings and balance updates of a whole batch
are written with a handful of statements instead of a handful per award.

The result is exactly what `operations.award` would write for each item, in order (the tests compare
the two); members in refund debt take that ordinary path, since their awards pay the debt first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import bindparam, select

from jifen.db import among
from jifen.errors import InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.engine import EntryRow, system_account, to_seal
from jifen.ledger.models import AVAILABLE, DEBT, ISSUANCE, PENDING, Account, JournalEntry, Lot, LotMove, Posting
from jifen.members.models import Member
from jifen.outbox import emit_entries
from jifen.programs.expiry import expiry_for
from jifen.rows import add_to, insert_rows, new_ids


@dataclass
class AwardItem:
    member: Member
    points: int
    occurred_at: dt.datetime
    pending_until: dt.datetime | None = None
    reference: str | None = None
    reason: str | None = None


_DUE_MEMBERS = select(Lot.member_pk).where(
    Lot.wallet_id == bindparam("wallet"), among(Lot.member_pk, "members"),
    ((Lot.pending > 0) & (Lot.pending_until <= bindparam("now")))
    | ((Lot.available > 0) & (Lot.expires_at <= bindparam("now")))).distinct()
_ACCOUNTS = select(Account.id, Account.kind, Account.member_pk, Account.balance).where(
    Account.wallet_id == bindparam("wallet"), among(Account.member_pk, "members"))


def award_many(sc: ops.Scope, items: list[AwardItem]) -> list[JournalEntry | EntryRow]:
    """Award every item in the scope's wallet; the caller holds the members' locks. One entry per item."""
    if not items:
        return []
    s, wallet = sc.session, sc.wallet
    for item in items:
        ops.check_points(item.points)
    pks = sorted({i.member.id for i in items})
    for pk in s.scalars(_DUE_MEMBERS, {"wallet": wallet.id, "members": pks, "now": sc.now}).all():
        ops.settle_member(sc, wallet, pk)
    accounts: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for r in s.execute(_ACCOUNTS, {"wallet": wallet.id, "members": pks}):
        accounts[r.member_pk][r.kind] = (r.id, r.balance)
    in_debt = {pk for pk, acc in accounts.items() if acc[DEBT][1] < 0}
    entries: list[JournalEntry | EntryRow | None] = [None] * len(items)
    fast = []
    for n, item in enumerate(items):
        if item.member.id in in_debt:  # the award pays the debt first: the ordinary path does that
            entries[n] = ops.award(sc, item.member, item.points, occurred_at=item.occurred_at,
                                   pending_until=item.pending_until, reference=item.reference, reason=item.reason)
        else:
            fast.append((n, item))
    if fast:
        for n, entry in zip((n for n, _ in fast), _write(sc, [i for _, i in fast], accounts), strict=True):
            entries[n] = entry
    return cast(list[JournalEntry | EntryRow], entries)  # every slot is filled by one of the two paths above


def _write(sc: ops.Scope, items: list[AwardItem], accounts: dict[int, dict[str, tuple[int, int]]]) -> list[EntryRow]:
    """The set path proper: ids taken in one call each, rows copied in, balances moved in id order."""
    s, wallet = sc.session, sc.wallet
    plan = []
    for item in items:
        expires = expiry_for(sc.program, item.occurred_at)
        if expires is not None and item.pending_until is not None and item.pending_until >= expires:
            raise InvalidRequest("pending_until must be before expires_at", code="invalid_pending")
        pending = item.pending_until if item.pending_until is not None and item.pending_until > sc.now else None
        plan.append((item, expires, pending))
    entry_ids, lot_ids = new_ids(s, JournalEntry, len(plan)), new_ids(s, Lot, len(plan))
    entries = [EntryRow(id=eid, program_id=sc.program.id, type="award", wallet_id=wallet.id, points=i.points,
                        member_pk=i.member.id, reason=i.reason, actor=sc.actor, reference=i.reference,
                        occurred_at=i.occurred_at, recorded_at=sc.now) for eid, (i, _, _) in zip(entry_ids, plan, strict=True)]
    insert_rows(s, JournalEntry, [e.row() for e in entries])
    insert_rows(s, Lot, [
        {"id": lot_id, "member_pk": i.member.id, "wallet_id": wallet.id, "source_entry_id": e.id, "origin_lot_id": None,
         "points": i.points, "earned_at": i.occurred_at, "expires_at": expires, "pending_until": pending,
         "available": 0 if pending else i.points, "pending": i.points if pending else 0, "held": 0, "frozen": 0}
        for e, lot_id, (i, expires, pending) in zip(entries, lot_ids, plan, strict=True)])
    issuance = system_account(s, wallet.id, ISSUANCE).id
    moves: list[dict[str, Any]]
    postings: list[dict[str, Any]]
    deltas: defaultdict[int, int]
    moves, postings, deltas = [], [], defaultdict(int)
    for e, lot_id, (i, _, pending) in zip(entries, lot_ids, plan, strict=True):
        account = accounts[i.member.id][PENDING if pending else AVAILABLE][0]
        moves.append({"entry_id": e.id, "lot_id": lot_id, "account_id": account, "amount": i.points})
        postings += [{"entry_id": e.id, "account_id": issuance, "member_pk": None, "amount": -i.points},
                     {"entry_id": e.id, "account_id": account, "member_pk": i.member.id, "amount": i.points}]
        deltas[account] += i.points
        to_seal(s, e, [(issuance, -i.points), (account, i.points)], [(lot_id, account, i.points)])
    insert_rows(s, LotMove, moves)
    insert_rows(s, Posting, postings)
    # Member accounts first, then the programme's issuance account: the engine's lock order.
    add_to(s, Account, "balance", dict(deltas))
    add_to(s, Account, "balance", {issuance: -sum(i.points for i, _, _ in plan)})
    emit_entries(s, entries)
    return entries
