"""What the recommender learns from, read once per programme as NumPy arrays: members (tier), the rewards
on offer, interactions (redemptions, and `browse` events naming a reward in `attributes.reward`), and the
postings on members' available accounts, from which any past moment's balance is a sum."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.events.models import Event
from jifen.lazy import lazy_import
from jifen.ledger.models import AVAILABLE, Account, JournalEntry, Posting
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.programs.models import Program, Wallet

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

BROWSE_WEIGHT = 0.25  # a look counts for a quarter of a redemption


def stamp(at: dt.datetime) -> np.datetime64:
    """A timezone-aware moment as the naive-UTC datetime64 the arrays hold."""
    return np.datetime64(at.astimezone(dt.UTC).replace(tzinfo=None), "us")


def _times(values) -> np.ndarray:
    return np.array([stamp(v) for v in values], dtype="datetime64[us]").reshape(-1)


@dataclass
class History:
    member_pks: np.ndarray  # sorted; a member's index is its position here
    tiers: np.ndarray  # the member's tier now ("" for none)
    reward_ids: np.ndarray  # the rewards that may be recommended (active, not a honeypot), by id
    codes: list[str]
    names: list[str]
    prices: np.ndarray  # points
    values: list[str]  # ¥ shown to members
    categories: np.ndarray  # top level of the category: 實物, 優惠券 …
    who: np.ndarray  # interactions: member index,
    what: np.ndarray  # reward index,
    when: np.ndarray  # datetime64[us] UTC,
    weight: np.ndarray  # 1 for a redemption, BROWSE_WEIGHT for a look,
    redeemed: np.ndarray  # True for a redemption
    posting_member: np.ndarray  # postings on available accounts: member index,
    posting_when: np.ndarray  # when the entry occurred,
    posting_amount: np.ndarray  # and the points

    def balances_at(self, moment: np.datetime64) -> np.ndarray:
        """Each member's available points just before `moment`."""
        before = self.posting_when < moment
        return np.bincount(self.posting_member[before], weights=self.posting_amount[before],
                           minlength=self.member_pks.size)


def load(session: Session, program: Program) -> History:
    members = session.execute(select(Member.id, Member.tier).where(Member.program_id == program.id)
                              .order_by(Member.id)).all()
    pks = np.array([m.id for m in members], dtype=np.int64)
    rewards = list(session.scalars(select(Reward).where(Reward.program_id == program.id, Reward.active.is_(True),
                                                        Reward.honeypot.is_(False)).order_by(Reward.id)))
    ids = np.array([r.id for r in rewards], dtype=np.int64)
    by_code = {r.code: i for i, r in enumerate(rewards)}
    redemptions = session.execute(select(Redemption.member_pk, Redemption.reward_id, Redemption.created_at)
                                  .where(Redemption.program_id == program.id)).all()
    looks = [(e.member_pk, by_code.get(str((e.data or {}).get("attributes", {}).get("reward"))), e.occurred_at)
             for e in session.execute(select(Event.member_pk, Event.data, Event.occurred_at).where(
                 Event.program_id == program.id, Event.type == "browse"))]
    looks = [x for x in looks if x[1] is not None]
    item_of = {rid: i for i, rid in enumerate(ids.tolist())}
    taken = [(pk, item_of[rid], at) for pk, rid, at in redemptions if rid in item_of]
    rows = taken + looks
    wallet = select(Wallet.id).where(Wallet.program_id == program.id, Wallet.is_default.is_(True)).scalar_subquery()
    postings = session.execute(select(Posting.member_pk, JournalEntry.occurred_at, Posting.amount)
                               .join(Account, Account.id == Posting.account_id)
                               .join(JournalEntry, JournalEntry.id == Posting.entry_id)
                               .where(Account.wallet_id == wallet, Account.kind == AVAILABLE)).all()
    return History(
        member_pks=pks, tiers=np.array([m.tier or "" for m in members], dtype=object),
        reward_ids=ids, codes=[r.code for r in rewards], names=[r.name for r in rewards],
        prices=np.array([r.points for r in rewards], dtype=float), values=[str(r.value) for r in rewards],
        categories=np.array([(r.category or "").split("/")[0] for r in rewards], dtype=object),
        who=np.searchsorted(pks, np.array([r[0] for r in rows], dtype=np.int64)),
        what=np.array([r[1] for r in rows], dtype=np.int64),
        when=_times(r[2] for r in rows),
        weight=np.array([1.0] * len(taken) + [BROWSE_WEIGHT] * len(looks)),
        redeemed=np.array([True] * len(taken) + [False] * len(looks), dtype=bool),
        posting_member=np.searchsorted(pks, np.array([p[0] for p in postings], dtype=np.int64)),
        posting_when=_times(p[1] for p in postings),
        posting_amount=np.array([p[2] for p in postings], dtype=float))
