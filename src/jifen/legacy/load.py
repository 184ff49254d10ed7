"""Opening balances written through the ledger, a batch of members per transaction: members created if
missing, each lot an award (`ledger.bulk.award_many`) under the reference `legacy:<member_id>:<n>`. A member is
written whole in one batch or not at all, so a run interrupted anywhere resumes by running again: members whose
legacy entries exist are skipped (looked for under the members' locks, so two runs at once cannot both write)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, load_only, sessionmaker

from jifen.db import among, run_in_transaction
from jifen.ledger import operations as ops
from jifen.ledger.bulk import AwardItem, award_many
from jifen.ledger.engine import lock_members
from jifen.ledger.models import JournalEntry, Posting
from jifen.legacy.source import LegacyMember
from jifen.members.models import Member
from jifen.members.service import NewMember, create_members
from jifen.programs.service import get_program, get_wallet

PREFIX = "legacy:"
REASON = "opening balance migrated from the legacy programme"

_IMPORTED = (select(JournalEntry.member_pk, func.sum(JournalEntry.points))
             .where(JournalEntry.id.in_(select(Posting.entry_id).where(among(Posting.member_pk, "members"))),
                    JournalEntry.reference.startswith(PREFIX, autoescape=True))
             .group_by(JournalEntry.member_pk))


def imported(session: Session, wallet_id: int, member_pks: list[int]) -> dict[int, int]:
    """Points each of these members received from a legacy import in the wallet (members without: absent)."""
    return dict(session.execute(_IMPORTED.where(JournalEntry.wallet_id == wallet_id),  # type: ignore[arg-type]
                                {"members": member_pks}).all())


def member_pks(session: Session, program_id: int, ids: list[str]) -> dict[str, int]:
    return dict(session.execute(select(Member.member_id, Member.id).where(
        Member.program_id == program_id, among(Member.member_id, "ids")), {"ids": ids}).all())


@dataclass
class LoadReport:
    members: int = 0  # members of the file
    created: int = 0  # members created by this run
    written: int = 0  # members whose balance this run wrote (members with a zero balance have nothing to write)
    skipped: int = 0  # members already imported by an earlier run
    entries: int = 0
    points: int = 0

    def add(self, other: LoadReport) -> None:
        for name in ("created", "written", "skipped", "entries", "points"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def load(factory: sessionmaker[Session], members: list[LegacyMember], *, program: str, wallet: str | None,
         now: dt.datetime, batch: int = 1000, actor: str = "legacy-import",
         progress: Callable[[int], None] = lambda _: None) -> LoadReport:
    report = LoadReport(members=len(members))
    for start in range(0, len(members), batch):
        chunk = members[start:start + batch]

        def one(s: Session, chunk: list[LegacyMember] = chunk) -> LoadReport:
            return _batch(s, chunk, program, wallet, now, actor)

        # Counted once the batch is committed (a retried or failed transaction counts nothing twice).
        report.add(run_in_transaction(factory, one))
        progress(start + len(chunk))
    return report


def _batch(s: Session, chunk: list[LegacyMember], program_code: str, wallet_code: str | None, now: dt.datetime,
           actor: str) -> LoadReport:
    program = get_program(s, program_code)
    sc = ops.Scope(s, program, get_wallet(s, program, wallet_code), now, actor=actor)
    pks = member_pks(s, program.id, [m.member_id for m in chunk])
    new = [m for m in chunk if m.member_id not in pks]
    pks |= {m.member_id: m.id for m in create_members(s, program, [
        NewMember(m.member_id, joined_at=min((lot.earned_at for lot in m.lots), default=now)) for m in new])}
    lock_members(s, list(pks.values()))
    done = imported(s, sc.wallet.id, list(pks.values()))
    todo = [m for m in chunk if m.lots and pks[m.member_id] not in done]
    # (the ledger needs the members' ids only: their personal data stays encrypted and unread)
    by_pk = {m.id: m for m in s.scalars(select(Member).options(load_only(Member.id)).where(among(Member.id, "ids")),
                                         {"ids": [pks[m.member_id] for m in todo]})}
    items = [AwardItem(by_pk[pks[m.member_id]], lot.points, lot.earned_at, reference=f"{PREFIX}{m.member_id}:{n}",
                       reason=REASON, expires_at=lot.expires_at)
             for m in todo for n, lot in enumerate(m.lots, 1)]
    award_many(sc, items)
    return LoadReport(created=len(new), written=len(todo), skipped=sum(pks[m.member_id] in done for m in chunk),
                      entries=len(items), points=sum(i.points for i in items))
