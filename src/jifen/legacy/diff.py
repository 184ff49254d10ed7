"""The migration's diff report: each member of the source file against what the ledger holds for them
(points the legacy import wrote, and the member's balance now: available + pending + held + frozen), the
mismatches, and the totals. Read a batch of members at a time, set-oriented."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.db import among
from jifen.ledger.models import LOT_KINDS, Account
from jifen.legacy.load import imported, member_pks
from jifen.legacy.source import LegacyMember
from jifen.programs.service import get_program, get_wallet

_BALANCES = (select(Account.member_pk, func.sum(Account.balance))
             .where(among(Account.member_pk, "members"), Account.kind.in_(LOT_KINDS)).group_by(Account.member_pk))


@dataclass
class Line:
    member_id: str
    rows: int
    source: int
    imported: int | None  # None: the member is not in the database
    balance: int | None

    @property
    def status(self) -> str:
        if self.imported is None:
            return "missing"
        return "ok" if self.source == self.imported == self.balance else "differs"


@dataclass
class Diff:
    lines: list[Line] = field(default_factory=list)

    @property
    def mismatches(self) -> list[Line]:
        return [line for line in self.lines if line.status != "ok"]

    def totals(self) -> dict[str, int]:
        return {"members": len(self.lines), "rows": sum(line.rows for line in self.lines),
                "source_points": sum(line.source for line in self.lines),
                "imported_points": sum(line.imported or 0 for line in self.lines),
                "balance_points": sum(line.balance or 0 for line in self.lines),
                "mismatches": len(self.mismatches)}

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["member_id", "source_rows", "source_balance", "imported", "balance", "status"])
            out.writerows([line.member_id, line.rows, line.source, "" if line.imported is None else line.imported,
                           "" if line.balance is None else line.balance, line.status] for line in self.lines)


def diff(session: Session, members: list[LegacyMember], *, program: str, wallet: str | None,
         batch: int = 1000) -> Diff:
    prog = get_program(session, program)
    wallet_id = get_wallet(session, prog, wallet).id
    report = Diff()
    for start in range(0, len(members), batch):
        chunk = members[start:start + batch]
        pks = member_pks(session, prog.id, [m.member_id for m in chunk])
        found = list(pks.values())
        got = imported(session, wallet_id, found)
        balances = dict(session.execute(_BALANCES.where(Account.wallet_id == wallet_id), {"members": found}).all())
        for m in chunk:
            pk = pks.get(m.member_id)
            report.lines.append(Line(m.member_id, m.rows, m.balance, None if pk is None else got.get(pk, 0),
                                     None if pk is None else balances.get(pk, 0)))
    return report
