"""The console's member list: filtered by tier and available balance, a page at a time, each member with
their tier and balance (the default wallet's available account, as the ledger keeps it)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.errors import InvalidRequest
from jifen.ledger.models import AVAILABLE, Account
from jifen.members.models import Member
from jifen.programs import tiers
from jifen.programs.models import Program
from jifen.programs.service import get_wallet
from jifen.web.forms import whole

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    tier: str = ""
    low: int | None = None  # available balance at least …
    high: int | None = None  # … and at most
    page: int = 1

    @classmethod
    def parse(cls, tier: str | None, low: str | None, high: str | None, page: str | None) -> Filters:
        """The query string's filters, or a clear refusal."""
        least, most = (whole(v, label, minimum=0) if v and v.strip() else None
                       for v, label in ((low, "minimum balance"), (high, "maximum balance")))
        if least is not None and most is not None and least > most:
            raise InvalidRequest("the minimum balance is above the maximum", code="invalid_range")
        return cls((tier or "").strip(), least, most, whole(page or "", "page", blank=1, minimum=1))

    def query(self, page: int) -> dict[str, str]:
        """The same filters on another page (for the page links)."""
        shown = {"tier": self.tier, "low": "" if self.low is None else str(self.low),
                 "high": "" if self.high is None else str(self.high), "page": str(page)}
        return {k: v for k, v in shown.items() if v}


@dataclass(frozen=True)
class Listing:
    rows: list[tuple[Member, str, int]]  # member, tier name, available balance
    has_next: bool
    tiers: list[tuple[str, str]]  # (code, name) of the programme's levels


def listing(session: Session, program: Program, f: Filters) -> Listing:
    cfg = tiers.tier_config(program)
    levels = [(lv.code, lv.name) for lv in cfg.levels] if cfg else []
    wallet = get_wallet(session, program, None)
    balance = func.coalesce(Account.balance, 0)
    query = (select(Member, balance)
             .outerjoin(Account, (Account.member_pk == Member.id) & (Account.wallet_id == wallet.id)
                        & (Account.kind == AVAILABLE))
             .where(Member.program_id == program.id))
    if f.tier:
        wanted = Member.tier == f.tier
        if levels and levels[0][0] == f.tier:  # the lowest level is also every member with no tier yet
            wanted = wanted | Member.tier.is_(None)
        query = query.where(wanted)
    if f.low is not None:
        query = query.where(balance >= f.low)
    if f.high is not None:
        query = query.where(balance <= f.high)
    found = session.execute(query.order_by(Member.id.desc()).offset((f.page - 1) * PAGE_SIZE)
                            .limit(PAGE_SIZE + 1)).all()
    names = dict(levels)
    rows = [(mb, names.get(mb.tier or (levels[0][0] if levels else ""), mb.tier or ""), int(bal))
            for mb, bal in found[:PAGE_SIZE]]
    return Listing(rows, len(found) > PAGE_SIZE, levels)
