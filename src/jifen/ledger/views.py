"""JSON shapes of ledger objects, loaded in batches (no query per entry)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, bindparam, select
from sqlalchemy.orm import Session

from jifen.ledger.models import AVAILABLE, MEMBER_KINDS, Account, Hold, JournalEntry, Lot, LotMove, Posting
from jifen.members.models import Member
from jifen.programs.models import Program, Wallet


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_POSTINGS = (select(Posting.entry_id, Posting.amount, Account.kind, Member.member_id)
             .join(Account, Account.id == Posting.account_id).outerjoin(Member, Member.id == Account.member_pk)
             .where(Posting.entry_id.in_(_IDS)).order_by(Posting.id))
_MOVES = (select(LotMove.entry_id, LotMove.lot_id, LotMove.amount, Account.kind, Lot.expires_at)
          .join(Account, Account.id == LotMove.account_id).join(Lot, Lot.id == LotMove.lot_id)
          .where(LotMove.entry_id.in_(_IDS)).order_by(LotMove.id))
_MEMBER_IDS = select(Member.id, Member.member_id).where(Member.id.in_(_IDS))
_WALLET_CODES = select(Wallet.id, Wallet.code).where(Wallet.id.in_(_IDS))


def entry_views(session: Session, entries: list[JournalEntry]) -> list[dict[str, Any]]:
    if not entries:
        return []
    ids = {"ids": [e.id for e in entries]}
    postings: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in session.execute(_POSTINGS, ids):
        postings[r.entry_id].append({"account": r.kind, "member_id": r.member_id, "amount": r.amount})
    lots: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in session.execute(_MOVES, ids):
        lots[r.entry_id].append({"lot_id": r.lot_id, "account": r.kind, "amount": r.amount,
                                 "expires_at": _iso(r.expires_at)})
    pks = {pk for e in entries for pk in (e.member_pk, e.counterparty_pk) if pk}
    names: dict[int | None, str] = dict(session.execute(_MEMBER_IDS, {"ids": list(pks)}).all()) if pks else {}
    wallets = dict(session.execute(_WALLET_CODES, {"ids": list({e.wallet_id for e in entries})}).all())
    return [
        {
            "entry_id": e.id,
            "type": e.type,
            "wallet": wallets[e.wallet_id],
            "points": e.points,
            "member_id": names.get(e.member_pk),
            "counterparty_member_id": names.get(e.counterparty_pk),
            "reverses_entry_id": e.reverses_entry_id,
            "hold_id": e.hold_id,
            "reference": e.reference,
            "reason": e.reason,
            "actor": e.actor,
            "occurred_at": _iso(e.occurred_at),
            "recorded_at": _iso(e.recorded_at),
            # Assigned when the writing transaction commits: null in a write's own response.
            "seq": e.seq,
            "hash": e.hash,
            "postings": postings[e.id],
            "lots": lots[e.id],
        }
        for e in entries
    ]


def entry_view(session: Session, entry: JournalEntry) -> dict[str, Any]:
    return entry_views(session, [entry])[0]


def hold_view(session: Session, h: Hold) -> dict[str, Any]:
    return {
        "hold_id": h.id,
        "status": h.status,
        "member_id": session.get_one(Member, h.member_pk).member_id,
        "wallet": session.get_one(Wallet, h.wallet_id).code,
        "points": h.points,
        "reference": h.reference,
        "expires_at": _iso(h.expires_at),
        "hold_entry_id": h.hold_entry_id,
        "settle_entry_id": h.settle_entry_id,
        "created_at": _iso(h.created_at),
        "settled_at": _iso(h.settled_at),
    }


def balance_view(session: Session, program: Program, wallet: Wallet, member: Member, now: dt.datetime,
                 expiries: int = 5) -> dict[str, Any]:
    """Balances as of `now`: lots already past expiry (not yet swept by the job) no longer count."""
    balances = dict(session.execute(
        select(Account.kind, Account.balance).where(Account.member_pk == member.id, Account.wallet_id == wallet.id)
    ).all())
    # The member's live lots in one read (a balance read is a member centre's most frequent request): those
    # past expiry the job has not swept yet, those whose pending points have matured, and the next expiries.
    lots = session.execute(
        select(Lot.expires_at, Lot.available, Lot.pending, Lot.pending_until).where(
            Lot.member_pk == member.id, Lot.wallet_id == wallet.id, (Lot.available > 0) | (Lot.pending > 0))
        .order_by(Lot.expires_at)
    ).all()
    # (a lot without an expiry never expires; one without pending_until has nothing pending)
    overdue = sum(lot.available for lot in lots if lot.expires_at is not None and lot.expires_at <= now)
    matured = sum(lot.pending for lot in lots if lot.pending_until is not None and lot.pending_until <= now)
    view: dict[str, Any] = {"member_id": member.member_id, "wallet": wallet.code}
    view.update({k: balances.get(k, 0) for k in MEMBER_KINDS})
    view[AVAILABLE] += matured - overdue
    view["pending"] -= matured
    view["debt"] = -view["debt"]
    upcoming = [(lot.expires_at, lot.available) for lot in lots
                if lot.available > 0 and lot.expires_at is not None and lot.expires_at > now]
    view["next_expiries"] = _group_by_day(upcoming, program.timezone, expiries)
    view["value_cny"] = str((program.point_value * view[AVAILABLE]).quantize(Decimal("0.01")))
    return view


def _group_by_day(rows: Iterable[tuple[Any, int]], timezone: str, limit: int) -> list[dict[str, Any]]:
    """Sum expiring points per calendar day in the programme's timezone: the last day they can be used
    (points expiring at midnight ending 31 December show as 31 December)."""
    tz = ZoneInfo(timezone)
    days: dict[str, int] = {}
    for expires_at, points in rows:
        day = (expires_at - dt.timedelta(microseconds=1)).astimezone(tz).date().isoformat()
        if day not in days and len(days) == limit:
            break
        days[day] = days.get(day, 0) + points
    return [{"date": d, "points": p} for d, p in days.items()]
