"""A redemption in the points mall, in order: the order checked and priced (mall), risk control's
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
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.mall import service as mall
from jifen.mall.models import Redemption, Reward
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.risk import cases as risk_cases
from jifen.risk.devices import sightings_of
from jifen.risk.scoring import Tx, assess_one


@ops.atomic
def redeem(sc: ops.Scope, member: Member, reward: Reward, quantity: int, address: dict[str, Any] | None = None,
           pay: str = "points", device_id: str | None = None, ip: str | None = None) -> Redemption:
    """Blocked by risk control (403 risk_blocked), or placed — in `review` when risk control asks for a
    person (a sixth order within the hour, a honeypot reward, a high score)."""
    price = mall.quote(sc, member, reward, quantity, address, pay)
    if mall.sold_out(sc.session, reward, quantity):
        raise mall.out_of_stock(sc, member, reward)
    lock_members(sc.session, [member.id])
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


def _sale(session: Session, program: Program, writes: list[Write]) -> mall.Allotment:
    """Lock order member → reward for the whole group: every member it names, then every reward's row, once."""
    named = sorted({w.payload["member_id"] for w in writes})
    lock_members(session, session.scalars(select(Member.id).where(Member.program_id == program.id,
                                                                   Member.member_id.in_(named))))
    return mall.Allotment(session, program.id, {w.payload["reward"] for w in writes})


# (program_id, [Write of a POST /v1/redemptions]) → an outcome each, for GroupCommit.
commit_redemptions = functools.partial(commit_writes, open_group=_sale)
