"""Many awards, or many members' due lots settled, in one go: the entries, lots, lot moves, postings and
balance updates of a whole batch are written with a handful of statements instead of a handful per award.

The result is exactly what `operations.award` (`settle_member`) would write for each item (member), in
order (the tests compare the two); members in refund debt take that ordinary path, since their awards and
maturing points pay the debt first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import bindparam, select

from jifen.db import among
from jifen.errors import InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.engine import EntryRow, system_account, to_seal
from jifen.ledger.models import AVAILABLE, DEBT, EXPIRY, ISSUANCE, PENDING, Account, JournalEntry, Lot, LotMove, Posting
from jifen.members.models import Member
from jifen.outbox import emit_entries
from jifen.programs.expiry import expiry_for
from jifen.rows import add_to, insert_rows, new_ids, select_rows, update_rows


@dataclass
class AwardItem:
    member: Member
    points: int
    occurred_at: dt.datetime
    pending_until: dt.datetime | None = None
    reference: str | None = None
    reason: str | None = None
    expires_at: dt.datetime | None = None  # None: the programme's expiry policy from occurred_at


_DUE_LOTS = select(Lot.id, Lot.member_pk, Lot.pending, Lot.available, Lot.pending_until, Lot.expires_at).where(
    Lot.wallet_id == bindparam("wallet"), among(Lot.member_pk, "members"),
    ((Lot.pending > 0) & (Lot.pending_until <= bindparam("now")))
    | ((Lot.available > 0) & (Lot.expires_at <= bindparam("now")))).order_by(Lot.member_pk, Lot.expires_at, Lot.id)
# (the kinds the set path posts to or checks: a batch read all five, 5,000 rows for 1,000 members)
_ACCOUNTS = select(Account.id, Account.kind, Account.member_pk, Account.balance).where(
    Account.wallet_id == bindparam("wallet"), among(Account.member_pk, "members"),
    among(Account.kind, "kinds"))

Accounts = dict[int, dict[str, tuple[int, int]]]  # {member pk: {kind: (account id, balance)}}


@dataclass
class _Batch:
    """Entries about to be written, with their postings and lot moves, and the lots they create or change."""

    entries: list[tuple[EntryRow, dict[int, int], list[tuple[int, int, int]]]] = field(default_factory=list)
    new_lots: list[dict[str, Any]] = field(default_factory=list)
    lot_states: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, entry: EntryRow, postings: dict[int, int], moves: list[tuple[int, int, int]]) -> None:
        self.entries.append((entry, {a: v for a, v in postings.items() if v != 0}, moves))


def award_many(sc: ops.Scope, items: list[AwardItem]) -> list[JournalEntry | EntryRow]:
    """Award every item in the scope's wallet; the caller holds the members' locks. One entry per item."""
    if not items:
        return []
    for item in items:
        ops.check_points(item.points)
    pks = sorted({i.member.id for i in items})
    batch = _Batch()
    accounts, in_debt, _ = _settle_due(sc, pks, batch)
    entries: list[JournalEntry | EntryRow | None] = [None] * len(items)
    fast = []
    for n, item in enumerate(items):
        if item.member.id in in_debt:  # the award pays the debt first: the ordinary path does that
            entries[n] = ops.award(sc, item.member, item.points, occurred_at=item.occurred_at,
                                   expires_at=item.expires_at, pending_until=item.pending_until,
                                   reference=item.reference, reason=item.reason)
        else:
            fast.append((n, item))
    awarded = _awards(sc, [i for _, i in fast], accounts, batch)
    _write(sc, batch, accounts)
    for (n, _), entry in zip(fast, awarded, strict=True):
        entries[n] = entry
    return cast(list[JournalEntry | EntryRow], entries)  # every slot is filled by one of the two paths above


def settle_many(sc: ops.Scope, member_pks: Iterable[int]) -> list[JournalEntry | EntryRow]:
    """Mature and expire the members' due lots in the scope's wallet, as `settle_member` does for each one;
    the caller holds the members' locks. The entries written (members settled the ordinary way first)."""
    pks = sorted(set(member_pks))
    if not pks:
        return []
    batch = _Batch()
    accounts, _, done = _settle_due(sc, pks, batch)
    _write(sc, batch, accounts)
    return [*done, *(e for e, _, _ in batch.entries)]


def _settle_due(sc: ops.Scope, pks: list[int], batch: _Batch) -> tuple[Accounts, set[int], list[JournalEntry]]:
    """The members' due lots settled: those of members in debt now, by the ordinary path (maturing pays
    the debt first), the others planned into the batch. (accounts, members still in debt, entries written)"""
    s, wallet = sc.session, sc.wallet
    accounts = _accounts(sc, pks)
    in_debt = {pk for pk, acc in accounts.items() if acc[DEBT][1] < 0}
    due = s.execute(_DUE_LOTS, {"wallet": wallet.id, "members": pks, "now": sc.now}).all()
    ordinary = {lot.member_pk for lot in due if lot.member_pk in in_debt}
    done = [e for pk in sorted(ordinary) for e in ops.settle_member(sc, wallet, pk)]
    if ordinary:  # their balances moved; a member whose debt is now paid takes the set path from here on
        accounts = _accounts(sc, pks)
        in_debt = {pk for pk, acc in accounts.items() if acc[DEBT][1] < 0}
    # (not `in_debt`: a member whose maturing paid off the debt is settled already, its lots as read are stale)
    _settle(sc, [lot for lot in due if lot.member_pk not in ordinary], accounts, batch)
    return accounts, in_debt, done


def _accounts(sc: ops.Scope, pks: list[int]) -> Accounts:
    accounts: Accounts = defaultdict(dict)
    rows = select_rows(sc.session, _ACCOUNTS, {"wallet": sc.wallet.id, "members": pks,
                                                   "kinds": [AVAILABLE, PENDING, DEBT]})
    for account, kind, member_pk, balance in rows:
        accounts[member_pk][kind] = (account, balance)
    return accounts


def _entry(sc: ops.Scope, entry_id: int, type_: str, points: int, member_pk: int, *, occurred_at: dt.datetime | None = None,
           reason: str | None = None, reference: str | None = None) -> EntryRow:
    return EntryRow(id=entry_id, program_id=sc.program.id, type=type_, wallet_id=sc.wallet.id, points=points,
                    member_pk=member_pk, reason=reason, actor=sc.actor, reference=reference,
                    occurred_at=occurred_at or sc.now, recorded_at=sc.now)


def _settle(sc: ops.Scope, due: list[Any], accounts: Accounts, batch: _Batch) -> None:
    """What `settle_member` does for each member (none in debt): due pending lots mature in one entry,
    then overdue available points expire in another."""
    by_member: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for lot in due:
        by_member[lot.member_pk].append(dict(lot._mapping))
    plans = []
    for pk, lots in by_member.items():
        maturing = [lot for lot in lots if lot["pending"] > 0 and lot["pending_until"] <= sc.now]
        for lot in maturing:  # (moved into available first: a lot both due and overdue expires whole)
            lot["available"], lot["pending"], lot["matured"] = lot["available"] + lot["pending"], 0, lot["pending"]
        overdue = [lot for lot in lots if lot["available"] > 0 and lot["expires_at"] is not None
                   and lot["expires_at"] <= sc.now]
        plans.append((pk, maturing, overdue))
        gone = {lot["id"] for lot in overdue}
        for lot in lots:
            batch.lot_states[lot["id"]] = {"id": lot["id"], "pending": lot["pending"],
                                           "available": 0 if lot["id"] in gone else lot["available"]}
    [entry_ids] = new_ids(sc.session, sum(bool(m) + bool(o) for _, m, o in plans), JournalEntry)
    ids = iter(entry_ids)
    expiry = system_account(sc.session, sc.wallet.id, EXPIRY).id
    for pk, maturing, overdue in plans:
        pending, available = accounts[pk][PENDING][0], accounts[pk][AVAILABLE][0]
        if maturing:
            points = sum(lot["matured"] for lot in maturing)
            batch.add(_entry(sc, next(ids), "mature", points, pk), {pending: -points, available: points},
                      [(lot["id"], acc, sign * lot["matured"]) for lot in maturing
                       for acc, sign in ((pending, -1), (available, 1))])
        if overdue:
            points = sum(lot["available"] for lot in overdue)
            batch.add(_entry(sc, next(ids), "expire", points, pk), {available: -points, expiry: points},
                      [(lot["id"], available, -lot["available"]) for lot in overdue])


def _awards(sc: ops.Scope, items: list[AwardItem], accounts: Accounts, batch: _Batch) -> list[EntryRow]:
    """Each award's entry, new lot, move and postings, added to the batch."""
    plan = []
    for item in items:
        expires = item.expires_at or expiry_for(sc.program, item.occurred_at)
        if expires is not None and expires <= item.occurred_at:
            raise InvalidRequest("expires_at must be after occurred_at", code="invalid_expiry")
        if expires is not None and item.pending_until is not None and item.pending_until >= expires:
            raise InvalidRequest("pending_until must be before expires_at", code="invalid_pending")
        pending = item.pending_until if item.pending_until is not None and item.pending_until > sc.now else None
        plan.append((item, expires, pending))
    entry_ids, lot_ids = new_ids(sc.session, len(plan), JournalEntry, Lot)
    issuance = system_account(sc.session, sc.wallet.id, ISSUANCE).id
    out = []
    for entry_id, lot_id, (i, expires, pending) in zip(entry_ids, lot_ids, plan, strict=True):
        e = _entry(sc, entry_id, "award", i.points, i.member.id, occurred_at=i.occurred_at, reason=i.reason,
                   reference=i.reference)
        batch.new_lots.append({
            "id": lot_id, "member_pk": i.member.id, "wallet_id": sc.wallet.id, "source_entry_id": e.id,
            "origin_lot_id": None, "points": i.points, "earned_at": i.occurred_at, "expires_at": expires,
            "pending_until": pending, "available": 0 if pending else i.points, "pending": i.points if pending else 0,
            "held": 0, "frozen": 0})
        account = accounts[i.member.id][PENDING if pending else AVAILABLE][0]
        batch.add(e, {issuance: -i.points, account: i.points}, [(lot_id, account, i.points)])
        out.append(e)
    return out


def _write(sc: ops.Scope, batch: _Batch, accounts: Accounts) -> None:
    """The set path proper: rows copied in, lots' states set, balances moved (member accounts in id
    order, then the programme's accounts: the engine's lock order), entries queued for the chain."""
    s = sc.session
    if not batch.entries:
        return
    members = {account for kinds in accounts.values() for account, _ in kinds.values()}
    insert_rows(s, JournalEntry, [e.row() for e, _, _ in batch.entries])
    insert_rows(s, Lot, batch.new_lots)
    update_rows(s, Lot, list(batch.lot_states.values()))
    insert_rows(s, LotMove, [{"entry_id": e.id, "lot_id": lot, "account_id": acc, "amount": amount}
                             for e, _, moves in batch.entries for lot, acc, amount in moves])
    insert_rows(s, Posting, [{"entry_id": e.id, "account_id": acc, "amount": amount,
                              "member_pk": e.member_pk if acc in members else None}
                             for e, postings, _ in batch.entries for acc, amount in postings.items()])
    member_deltas: defaultdict[int, int] = defaultdict(int)
    system_deltas: defaultdict[int, int] = defaultdict(int)
    for e, postings, moves in batch.entries:
        for acc, amount in postings.items():
            (member_deltas if acc in members else system_deltas)[acc] += amount
        to_seal(s, e, list(postings.items()), moves)
    below = {a: v for a, v in add_to(s, Account, "balance", dict(member_deltas)).items() if v < 0}
    if below:  # (no debt account is touched here: members in debt take the ordinary path)
        raise AssertionError(f"member balances would go negative: {below}")
    add_to(s, Account, "balance", dict(system_deltas))
    emit_entries(s, [e for e, _, _ in batch.entries])
