"""A redemption in the points mall, in order: the order checked (mall) and priced for the member
(flows/pricing.py: a campaign's double-value redemption days included, its saving counted against the
campaign's budget — all or nothing, the normal price when the budget no longer covers it), risk control's
verdict (risk), the points held and the stock reserved (mall, through the ledger), the case and alert
for a flagged order (risk), and the redemption as a member event for tasks, badges and rules (events).

Concurrent POST /v1/redemptions are committed in groups (`commit_redemptions`, flows/group_commit.py): the
group's members are locked once for the transaction, then its rewards, whose stock is taken once for the whole
group (mall's `Allotment`); each redemption then runs as above in arrival order, in its own savepoint, except
that the redeem events are ingested together at the group's end, and the attempts at a reward the group has
already sold out are answered together in one pass (`_Sale`)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.db import among
from jifen.errors import JifenError
from jifen.events.schemas import EventIn
from jifen.flows.group_commit import Outcome, Write, commit_writes
from jifen.flows.intake import ingest
from jifen.flows.pricing import price as member_price
from jifen.idempotency import before_refusal
from jifen.ledger import operations as ops
from jifen.ledger.engine import hold_members, lock_members, release_members
from jifen.mall import service as mall
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.members.service import found, get_member
from jifen.programs.models import Program
from jifen.programs.service import get_wallet
from jifen.risk import cases as risk_cases
from jifen.risk.devices import sightings_of
from jifen.risk.scoring import Tx, assess_one
from jifen.rules import budgets
from jifen.security import ratelimit


@ops.atomic
def redeem(sc: ops.Scope, member: Member, reward: Reward, quantity: int, address: dict[str, Any] | None = None,
           pay: str = "points", device_id: str | None = None, ip: str | None = None) -> Redemption:
    """Blocked by risk control (403 risk_blocked), or placed — in `review` when risk control asks for a
    person (a sixth order within the hour, a honeypot reward, a high score)."""
    mall.check_order(sc, member, reward, quantity, address)
    if mall.sold_out(sc.session, reward, quantity):
        raise mall.out_of_stock(sc, member, reward)
    lock_members(sc.session, [member.id])
    price = _counted(sc, reward, quantity, member_price(sc.session, sc.program, member, reward, sc.now, pay))
    tx = Tx(member, "redeem", sc.now, points=price[0] * quantity, sightings=sightings_of(None, device_id, ip),
            honeypot=reward.honeypot)
    verdict = assess_one(sc.session, sc.program, sc.now, tx, "redemption")
    r = mall.place(sc, member, reward, quantity, price, address, review=verdict.action == "review",
                   risk=verdict.view())
    risk_cases.record(sc.session, sc.program.id, (member.id, member.member_id), sc.now, verdict, "redemption",
                      str(r.id), sc.now)
    if verdict.case_id is not None:
        r.risk = verdict.view()  # with the case it opened
    event = EventIn(event_id=f"redeem:{r.id}", member_id=member.member_id, type="redeem", occurred_at=sc.now,
                    attributes={"reward": reward.code, "kind": reward.kind, "category": reward.category,
                                "quantity": quantity, "points": r.points})
    sale = sc.session.info.get(_Sale.KEY)
    if sale is not None:
        sale.events.append((sc.actor, sc.now, event))  # (taken with the group's others at its end)
    else:
        ingest(sc.session, sc.program, [event], now=sc.now, actor=sc.actor)
    return r


def ordered(sc: ops.Scope, member_id: str, reward: str) -> tuple[Member, Reward]:
    """An order's member (rate-limited per member, as every write naming one) and reward: in a group, as its
    `_Sale` read them once for all its orders."""
    ratelimit.member(sc.program.id, member_id)
    sale = sc.session.info.get(_Sale.KEY)
    if sale is None:
        return get_member(sc.session, sc.program, member_id), mall.get_reward(sc.session, sc.program, reward)
    found_reward = sale.rewards.get(reward)
    return found(sale.members.get(member_id), member_id), found_reward or mall.get_reward(sc.session, sc.program, reward)


def _counted(sc: ops.Scope, reward: Reward, quantity: int, price: mall.Price) -> mall.Price:
    """The campaign's offer stays only if the order's saving fits in its budget (the budget's row taken by a
    conditional UPDATE after the reward's row: concurrent orders never pass it); otherwise the normal price."""
    if price.offer is None:
        return price
    mall.lock_reward(sc.session, reward)
    name = budgets.of_campaign(price.offer.campaign)
    if budgets.take(sc.session, sc.program.id, name, price.saved * quantity, price.offer.budget):
        return price
    return price.without_offer()


_NAMED = (Member.program_id == bindparam("program"), among(Member.member_id, "ids"))


class _Sale:
    """A group's redemptions (commit_writes' `Grouped`): lock order member → reward for the whole group, every
    member it names, then every reward's row, once (mall's `Allotment`). An attempt at a reward the group has
    already sold out (fewer units left than it asks) is deferred, and all such attempts are answered
    together as `redeem` would answer each — a replay or 409 for a used key, the member's and the order's own
    errors, then out_of_stock with the member's suggestions — in a few statements for the lot. A flash sale's
    late attempts, most of its traffic, then cost no savepoint and no round of reads each."""

    KEY = "jifen.flows.sale"  # (in the session's info while the group runs)

    def __init__(self, session: Session, program: Program, writes: list[Write]):
        # The members and rewards the orders name, read once, after their locks (and held here: the session's
        # identity map keeps them only while something refers to them)
        named = {"program": program.id, "ids": sorted({w.payload["member_id"] for w in writes})}
        hold_members(session, session.scalars(select(Member.id).where(*_NAMED), named))
        self.members = {m.member_id: m for m in session.scalars(select(Member).where(*_NAMED), named)}
        codes = {w.payload["reward"] for w in writes}
        self.allotment = mall.Allotment(session, program.id, codes)  # (its rows locked after the members')
        self.rewards = {r.code: r for r in session.scalars(select(Reward).where(
            Reward.program_id == program.id, Reward.code.in_(sorted(codes))))}
        self.session, self.program = session, program
        # The orders' redeem events, taken together by `ingest` when the group ends (as a batch of events is),
        # not one `ingest` each: what they earn or advance counts from the next group on.
        self.events: list[tuple[str | None, dt.datetime, EventIn]] = []
        session.info[self.KEY] = self

    def mark(self) -> tuple[dict[int, int], int]:
        return self.allotment.mark(), len(self.events)

    def undo(self, mark: tuple[dict[int, int], int]) -> None:
        self.allotment.undo(mark[0])
        del self.events[mark[1]:]

    def defers(self, w: Write) -> bool:
        reward_id = self.allotment.ids.get(w.payload["reward"])
        return reward_id is not None and not self.allotment.has(reward_id, w.payload["quantity"])

    def answer(self, writes: list[Write], now: dt.datetime) -> list[Outcome]:
        s, program = self.session, self.program
        outcomes: list[Outcome] = list(before_refusal(s, program.id, [(w.key, w.operation, w.payload) for w in writes]))
        members, rewards = self.members, self.rewards
        sc = ops.Scope(s, program, get_wallet(s, program, None), now)
        sold_out: dict[str, list[tuple[int, Member]]] = {}  # reward → (write, member) refused for stock
        for n, w in enumerate(writes):
            if outcomes[n] is not None:
                continue
            body = w.payload
            try:
                ratelimit.member(program.id, body["member_id"])
                member = found(members.get(body["member_id"]), body["member_id"])
                mall.check_order(sc, member, rewards[body["reward"]], body["quantity"], body.get("address"))
            except JifenError as exc:
                outcomes[n] = exc
                continue
            sold_out.setdefault(body["reward"], []).append((n, member))
        for code, refused in sold_out.items():
            answers = mall.out_of_stock_for(sc, [m for _, m in refused], rewards[code])
            for (n, _), answer in zip(refused, answers, strict=True):
                outcomes[n] = answer
        return outcomes

    def close(self) -> None:
        del self.session.info[self.KEY]
        taken: dict[tuple[str | None, dt.datetime], list[EventIn]] = {}
        for actor, now, event in self.events:
            taken.setdefault((actor, now), []).append(event)
        for (actor, now), events in taken.items():
            ingest(self.session, self.program, events, now=now, actor=actor)
        release_members(self.session)
        self.allotment.close()


# (program_id, [Write of a POST /v1/redemptions]) → an outcome each, for GroupCommit.
commit_redemptions = functools.partial(commit_writes, open_group=_Sale)
