"""Background ledger jobs: mature pending points, expire overdue lots, release stale holds.

Each job works in committed batches (resumable: a rerun picks up what is left) and re-checks
every candidate under its member's lock, so two runs at once never expire or mature a point twice.
On PostgreSQL, concurrent runners skip members another runner has locked and share the work.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jifen.db import among, run_in_transaction, utcnow
from jifen.errors import Conflict
from jifen.ledger import bulk
from jifen.ledger import operations as ops
from jifen.ledger.models import Hold, Lot
from jifen.members.models import Member
from jifen.programs.models import Program, Wallet


@dataclass
class JobReport:
    entries: int = 0
    members: int = 0
    holds_released: int = 0
    batches: int = 0
    tier_evaluations: int = 0
    reminders: int = 0
    notifications: int = 0


def _claim_members(session: Session, pks: list[int]) -> list[int]:
    stmt = select(Member.id).where(among(Member.id, "members")).order_by(Member.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt, {"members": pks}))


def settle_due(factory: sessionmaker[Session], now: dt.datetime | None = None, batch: int = 10_000,
               progress: Callable[[int], None] | None = None) -> JobReport:
    """Mature and expire every lot whose time has come, a batch of members per transaction, written by
    the ledger's set path (`bulk.settle_many`: a few statements per batch and wallet, not a few per member)."""
    now = now or utcnow()
    report = JobReport()
    due = (Lot.available > 0) & (Lot.expires_at <= now) | (Lot.pending > 0) & (Lot.pending_until <= now)
    after = 0  # member-id cursor: each pass moves forward, so the job ends even with skipped members
    while True:
        def one_batch(s: Session) -> list[int]:
            members = s.scalars(
                select(Lot.member_pk).where(due, Lot.member_pk > after).distinct().order_by(Lot.member_pk).limit(batch)
            ).all()
            if not members:
                return []
            claimed = _claim_members(s, list(members))
            # Every wallet of the member, so the cursor never skips one; read under the locks, so a member
            # another runner settled meanwhile has nothing left here.
            by_wallet: defaultdict[int, list[int]] = defaultdict(list)
            for wallet_id, member_pk in s.execute(select(Lot.wallet_id, Lot.member_pk).where(
                    due, among(Lot.member_pk, "members")).distinct(), {"members": claimed}):
                by_wallet[wallet_id].append(member_pk)
            for wallet_id in sorted(by_wallet):  # system accounts locked in wallet order by every runner
                wallet = s.get_one(Wallet, wallet_id)
                sc = ops.Scope(s, s.get_one(Program, wallet.program_id), wallet, now, actor="job:settle")
                report.entries += len(bulk.settle_many(sc, by_wallet[wallet_id]))
            report.members += len(claimed)
            return list(members)

        seen = run_in_transaction(factory, one_batch)
        if not seen:
            return report
        after = max(seen)
        report.batches += 1
        if progress:
            progress(len(seen))


def release_stale_holds(factory: sessionmaker[Session], now: dt.datetime | None = None, batch: int = 200) -> JobReport:
    """Release open holds past their expires_at (an abandoned checkout gives its points back)."""
    now = now or utcnow()
    report = JobReport()
    while True:
        def one_batch(s: Session) -> int:
            ids = s.scalars(select(Hold.id).where(Hold.status == "open", Hold.expires_at <= now)
                            .order_by(Hold.id).limit(batch)).all()
            released = 0
            for hold_id in ids:
                h = s.get_one(Hold, hold_id)
                wallet = s.get_one(Wallet, h.wallet_id)
                sc = ops.Scope(s, s.get_one(Program, h.program_id), wallet, now, actor="job:holds")
                try:
                    with s.begin_nested():
                        ops.release(sc, hold_id)
                    released += 1
                except Conflict:  # settled meanwhile by a capture or another runner
                    pass
            report.holds_released += released
            return len(ids)

        if run_in_transaction(factory, one_batch) == 0:
            return report
        report.batches += 1
