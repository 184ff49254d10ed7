"""A redemption in the points mall, in order: the order checked (mall) and priced for the member
(flows/pricing.py: a campaign's double-value redemption days included, its saving counted against the
campaign's budget — all or nothing, the normal price when the budget no longer covers it), risk control's
verdict (risk), the points held and the stock reserved (mall, through the ledger), the case and alert
for a flagged order (risk), and the redemption as a member event for tasks, badges and rules (events).

Concurrent POST /v1/redemptions are committed in groups (`commit_redemptions`, flows/group_commit.py): the
group's members are locked, then its rewards, whose stock is taken once for the whole group (mall's
`Allotment`); each redemption then runs as above in arrival order, in its own savepoint."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.events.schemas import EventIn
from jifen.flows.group_commit import Write, commit_writes
from jifen.flows.intake import ingest
from jifen.flows.pricing import price as member_price
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.mall import service as mall
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.risk import cases as risk_cases
from jifen.risk.devices import sightings_of
from jifen.risk.scoring import Tx, assess_one
from jifen.rules import budgets


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
    r = mall.place(sc, member, reward, quantity, price, address, review=verdict.action == "review")
    risk_cases.record(sc.session, sc.program.id, (member.id, member.member_id), sc.now, verdict, "redemption",
                      str(r.id), sc.now)
    r.risk = verdict.view()  # with the case it opened
    ingest(sc.session, sc.program, [EventIn(
        event_id=f"redeem:{r.id}", member_id=member.member_id, type="redeem", occurred_at=sc.now,
        attributes={"reward": reward.code, "kind": reward.kind, "category": reward.category, "quantity": quantity,
                    "points": r.points})], now=sc.now, actor=sc.actor)
    return r


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


def _sale(session: Session, program: Program, writes: list[Write]) -> mall.Allotment:
    """Lock order member → reward for the whole group: every member it names, then every reward's row, once."""
    named = sorted({w.payload["member_id"] for w in writes})
    lock_members(session, session.scalars(select(Member.id).where(Member.program_id == program.id,
                                                                   Member.member_id.in_(named))))
    return mall.Allotment(session, program.id, {w.payload["reward"] for w in writes})


# (program_id, [Write of a POST /v1/redemptions]) → an outcome each, for GroupCommit.
commit_redemptions = functools.partial(commit_writes, open_group=_sale)
