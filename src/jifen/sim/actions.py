"""Each operation of the plan carried out as the API carries it out: the same flow and service functions, in
one transaction keyed by the operation's Idempotency-Key (jifen/idempotency.py, as apikit.keyed does), events
keyed by their event_id through the intake — singly, in a batch, or committed with the concurrent ones
(flows/group_commit.py). An operation naming an object whose creation was refused is refused as the API
would refuse it (404), without a round trip."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fastapi.encoders import jsonable_encoder
from sqlalchemy.orm import Session, sessionmaker

from jifen.db import run_in_transaction
from jifen.engagement import checkin, gifts, pools, red_packets
from jifen.errors import NotFound
from jifen.events.schemas import EventIn
from jifen.flows import points
from jifen.flows.group_commit import ALONE, GroupCommit
from jifen.flows.intake import ingest
from jifen.flows.redeem import redeem
from jifen.idempotency import idempotent
from jifen.ledger import operations as ops
from jifen.mall import service as mall
from jifen.members.service import get_member
from jifen.programs.service import get_program, get_wallet
from jifen.sim.plan import POOL_REWARD, Op

ACTOR = "sim"


@dataclass
class Env:
    """What the clients share: sessions, the simulated clock, the group commit of single events, and the ids
    the database gave to what earlier operations created."""

    factory: sessionmaker[Session]
    now: dt.datetime
    group: GroupCommit | None = None
    program_id: int = 0
    lose_answers: float = 0.0  # the share of answers lost on the way back (a fault: the client sends again)
    # Where operations are carried out when not here: an API worker process (sim/workers.py).
    remote: Callable[[Op], dict[str, Any]] | None = None
    ids: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self) -> dt.datetime:
        return self.now

    def snapshot(self) -> dict[int, int]:
        with self.lock:
            return dict(self.ids)

    def created(self, n: int, label: str) -> int:
        with self.lock:
            if n not in self.ids:
                raise NotFound(f"no {label} (its operation #{n} was refused)", code=f"unknown_{label}")
            return self.ids[n]


def _event(op: Op, member: str, amount: str | None, suffix: str = "", type_: str = "purchase",
           order: str | None = None, now: dt.datetime | None = None) -> EventIn:
    return EventIn(event_id=f"ev-{op.n}{suffix}", member_id=member, type=type_, occurred_at=now,
                   amount=Decimal(amount) if amount is not None else None,
                   order_id=order or f"o-ev-{op.n}{suffix}", channel="sim")


def _ingest(env: Env, events: list[EventIn], strict: bool = True) -> list[dict[str, Any]]:
    return run_in_transaction(env.factory, lambda s: ingest(s, get_program(s, "default"), events, now=env.now,
                                                            actor=ACTOR, strict=strict))


def _keyed(env: Env, op: Op, operation: str, work: Callable[[ops.Scope], Any]) -> dict[str, Any]:
    def tx(s: Session) -> dict[str, Any]:
        program = get_program(s, "default")
        sc = ops.Scope(s, program, get_wallet(s, program, None), env.now, actor=ACTOR)
        result, replayed = idempotent(s, program.id, f"sim-{op.n}", operation, jsonable_encoder(op.args),
                                      lambda: jsonable_encoder(work(sc)))
        return {**result, "replayed": replayed}

    return run_in_transaction(env.factory, tx)


def _member(sc: ops.Scope, member_id: str):
    return get_member(sc.session, sc.program, member_id)


def purchase(env: Env, op: Op) -> dict[str, Any]:
    ev = _event(op, op.args["member"], op.args["amount"], now=env.now)
    if op.args["via"] == "group" and env.group is not None:
        outcome = env.group.submit((env.program_id, ACTOR), ev).result()
        if isinstance(outcome, Exception):
            raise outcome
        if outcome is not ALONE:
            return outcome
    return _ingest(env, [ev])[0]


def purchases(env: Env, op: Op) -> dict[str, Any]:
    results = _ingest(env, [_event(op, m, a, f".{j}", now=env.now) for j, (m, a) in enumerate(op.args["lines"])],
                      strict=False)
    return {"points": sum(r.get("points", 0) for r in results),
            "rejected": [r["error"]["code"] for r in results if r["status"] == "rejected"],
            "replayed": all(r["status"] == "replayed" for r in results)}


def refund(env: Env, op: Op) -> dict[str, Any]:
    ev = _event(op, op.args["member"], op.args["amount"], type_="refund", order="o-" + op.args["event"], now=env.now)
    return _ingest(env, [ev])[0]


def check_in(env: Env, op: Op) -> dict[str, Any]:
    return _keyed(env, op, f"check_in:{op.args['member']}", lambda sc: checkin.check_in(
        sc.session, sc.program, _member(sc, op.args["member"]), sc.now))


def spend(env: Env, op: Op) -> dict[str, Any]:
    return _keyed(env, op, "points.spend", lambda sc: points.spend(sc, _member(sc, op.args["member"]),
                                                                    op.args["points"]))


def _entry(e) -> dict[str, Any]:
    return {"entry_id": e.id, "type": e.type, "points": e.points}


def adjust(env: Env, op: Op) -> dict[str, Any]:
    return _keyed(env, op, "points.adjust", lambda sc: _entry(ops.adjust(
        sc, _member(sc, op.args["member"]), op.args["points"], reason="simulated correction")))


def freeze(env: Env, op: Op) -> dict[str, Any]:
    fn = ops.freeze if op.kind == "freeze" else ops.unfreeze
    return _keyed(env, op, f"points.{op.kind}", lambda sc: _entry(fn(
        sc, _member(sc, op.args["member"]), op.args["points"], reason="simulated risk decision")))


def transfer(env: Env, op: Op) -> dict[str, Any]:
    def work(sc: ops.Scope) -> dict[str, Any]:
        giver, receiver = _member(sc, op.args["member"]), _member(sc, op.args["to"])
        if op.kind == "gift":
            return _entry(gifts.gift(sc, giver, receiver, op.args["points"]))
        return _entry(points.transfer(sc, giver, receiver, op.args["points"]))

    return _keyed(env, op, f"points.{op.kind}", work)


def redemption(env: Env, op: Op) -> dict[str, Any]:
    def work(sc: ops.Scope) -> dict[str, Any]:
        reward = mall.get_reward(sc.session, sc.program, op.args["reward"])
        address = {"city": "模擬市"} if reward.kind == "physical" else None
        r = redeem(sc, _member(sc, op.args["member"]), reward, op.args["quantity"], address)
        return {"id": r.id, "status": r.status}

    return _keyed(env, op, "redemptions.create", work)


TRANSITIONS = {"fulfil": mall.fulfil, "cancel": mall.cancel, "refund_redemption": mall.refund}


def transition(env: Env, op: Op) -> dict[str, Any]:
    rid = env.created(op.args["redemption"], "redemption")
    return _keyed(env, op, f"redemptions.{op.kind}:{rid}", lambda sc: {"status": TRANSITIONS[op.kind](
        sc, mall.get_redemption(sc.session, sc.program, rid)).status})


def red_packet(env: Env, op: Op) -> dict[str, Any]:
    return _keyed(env, op, "red_packets.send", lambda sc: {"id": red_packets.send(
        sc, _member(sc, op.args["member"]), op.args["points"], op.args["shares"], "equal",
        dt.timedelta(hours=op.args["hours"])).id})


def claim(env: Env, op: Op) -> dict[str, Any]:
    pid = env.created(op.args["packet"], "red_packet")
    return _keyed(env, op, f"red_packets.claim:{pid}", lambda sc: {"points": red_packets.claim(
        sc, red_packets.get_packet(sc.session, sc.program.id, pid), _member(sc, op.args["member"])).points})


def pool_open(env: Env, op: Op) -> dict[str, Any]:
    return _keyed(env, op, "pools.open", lambda sc: {"id": pools.open_pool(
        sc, _member(sc, op.args["member"]), mall.get_reward(sc.session, sc.program, POOL_REWARD),
        op.args["hours"]).id})


def contribute(env: Env, op: Op) -> dict[str, Any]:
    pid = env.created(op.args["pool"], "pool")
    return _keyed(env, op, f"pools.contribute:{pid}", lambda sc: {"status": pools.contribute(
        sc, pools.get_pool(sc.session, sc.program.id, pid), _member(sc, op.args["member"]), op.args["points"]).status})


ACTIONS: dict[str, Callable[[Env, Op], dict[str, Any]]] = {
    "purchase": purchase, "purchases": purchases, "refund": refund, "check_in": check_in, "spend": spend,
    "adjust": adjust, "freeze": freeze, "unfreeze": freeze, "transfer": transfer, "gift": transfer,
    "redeem": redemption, "fulfil": transition, "cancel": transition, "refund_redemption": transition,
    "red_packet": red_packet, "claim": claim, "pool_open": pool_open, "contribute": contribute}
# Operations whose answer carries the id of what they created, for later operations to name.
CREATES = {"redeem", "red_packet", "pool_open"}


def act(env: Env, op: Op) -> dict[str, Any]:
    """The operation's answer; raises the JifenError it was refused with (or a database error: outcome unknown)."""
    answer = env.remote(op) if env.remote else ACTIONS[op.kind](env, op)
    if op.kind in CREATES:
        with env.lock:
            env.ids[op.n] = answer["id"]
    return answer

