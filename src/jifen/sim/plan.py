"""The operation list of a simulation, a pure function of (seed, ops, clients): replayable, and shrinkable by
dropping operations (an operation naming one that was dropped or refused is refused in its turn).

Operations come in rounds separated by `tick`s (the clock moves on and the jobs run). Within a round each
client works on its own share of the members, so every member's operations run in one known order while the
clients still contend for what members share: rewards' stock, system accounts, the hash chain, idempotency
records, group commits. Members are dealt out afresh every round."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MEMBERS_PER_CLIENT = 4
# Rewards: code → (kind, points per unit, stock or None for unlimited). FLASH is the flash sale's scarce item.
REWARDS: dict[str, tuple[str, int, int | None]] = {
    "CPN": ("coupon", 120, None), "MUG": ("physical", 200, 40), "FLASH": ("coupon", 60, 12)}
POOL_REWARD = "CPN"  # unlimited stock: a pool completes whenever its points are in (see model.py)
# How often each kind of operation is drawn within a round.
WEIGHTS = {"purchase": 14, "purchases": 4, "refund": 5, "check_in": 6, "spend": 5, "redeem": 6, "fulfil": 2,
           "cancel": 2, "refund_redemption": 2, "transfer": 4, "gift": 3, "red_packet": 2, "claim": 4,
           "pool_open": 1, "contribute": 4, "adjust": 2, "freeze": 2, "unfreeze": 2}


@dataclass(frozen=True)
class Op:
    n: int  # its place in the original list: names its keys, and what later operations refer to
    kind: str
    client: int
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.args.items())
        return f"#{self.n} c{self.client} {self.kind} {shown}".rstrip()


def member_ids(clients: int) -> list[str]:
    return [f"s{i:03d}" for i in range(max(8, MEMBERS_PER_CLIENT * clients))]


class _Planner:
    def __init__(self, seed: int, clients: int):
        self.rng, self.clients = random.Random(seed), clients
        self.members = member_ids(clients)
        self.ops: list[Op] = []
        # What later operations may name: (op n, member) of purchases, redemptions, red packets, pools.
        self.orders: list[tuple[str, str]] = []
        self.redemptions: list[tuple[int, str]] = []
        self.packets: list[tuple[int, str]] = []
        self.pools: list[tuple[int, str]] = []

    def add(self, kind: str, client: int, **args: Any) -> int:
        n = len(self.ops)
        self.ops.append(Op(n, kind, client, args))
        return n

    def amount(self) -> str:
        return str(Decimal(self.rng.randint(50, 40000)) / 100)

    def round(self, size: int, flash: bool) -> None:
        rng, pool = self.rng, list(self.members)
        rng.shuffle(pool)
        groups = [pool[c::self.clients] for c in range(self.clients)]
        named_now: list[list[tuple[Any, str]]] = [[], [], [], []]  # made this round: named from the next one
        if flash:  # every client at once on the scarce reward
            for c, group in enumerate(groups):
                for who in rng.sample(group, min(len(group), 3)):
                    n = self.add("redeem", c, member=who, reward="FLASH", quantity=rng.choice([1, 1, 2]))
                    named_now[1].append((n, who))
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        for _ in range(size):
            c = rng.randrange(self.clients)
            group = groups[c]
            kind = rng.choices(kinds, weights)[0]
            self._one(kind, c, group, named_now)
        self.orders += named_now[0]
        self.redemptions += named_now[1]
        self.packets += named_now[2]
        self.pools += named_now[3]

    def _mine(self, refs: list[tuple[Any, str]], group: list[str]) -> tuple[Any, str] | None:
        """An earlier round's object whose member is in this client's group."""
        mine = [r for r in refs if r[1] in group]
        return self.rng.choice(mine) if mine else None

    def _one(self, kind: str, c: int, group: list[str], named_now: list[list[tuple[Any, str]]]) -> None:
        rng = self.rng
        who = rng.choice(group)
        other = rng.choice([m for m in group if m != who]) if len(group) > 1 else None
        if kind == "purchase":
            n = self.add(kind, c, member=who, amount=self.amount(), via=rng.choice(["single", "group", "group"]))
            named_now[0].append((f"ev-{n}", who))
        elif kind == "purchases":
            lines = [(rng.choice(group), self.amount()) for _ in range(rng.randint(2, 5))]
            n = self.add(kind, c, lines=lines)
            named_now[0] += [(f"ev-{n}.{j}", m) for j, (m, _) in enumerate(lines)]
        elif kind == "refund":
            if (ref := self._mine(self.orders, group)) is not None:
                self.add(kind, c, event=ref[0], member=ref[1],
                         amount=rng.choice([None, str(Decimal(rng.randint(1, 20000)) / 100)]))
        elif kind in ("check_in", "spend", "adjust", "freeze", "unfreeze"):
            args: dict[str, Any] = {"member": who}
            if kind == "spend":
                args["points"] = rng.randint(1, 300)
            elif kind == "adjust":
                args["points"] = rng.choice([-1, 1]) * rng.randint(1, 150)
            elif kind in ("freeze", "unfreeze"):
                args["points"] = rng.choice([None, rng.randint(1, 80)])
            self.add(kind, c, **args)
        elif kind == "redeem":
            reward = rng.choice(["CPN", "MUG", "MUG"])
            n = self.add(kind, c, member=who, reward=reward, quantity=rng.choice([1, 1, 2]))
            named_now[1].append((n, who))
        elif kind in ("fulfil", "cancel", "refund_redemption"):
            if (ref := self._mine(self.redemptions, group)) is not None:
                self.add(kind, c, redemption=ref[0], member=ref[1])
        elif kind in ("transfer", "gift") and other:
            self.add(kind, c, member=who, to=other, points=rng.randint(1, 150))
        elif kind == "red_packet":
            n = self.add(kind, c, member=who, points=rng.randint(10, 120), shares=rng.randint(2, 4),
                         hours=rng.randint(24, 120))
            named_now[2].append((n, who))
        elif kind == "claim":
            if (ref := self._mine(self.packets, group)) is not None:
                self.add(kind, c, packet=ref[0], sender=ref[1], member=rng.choice(group))
        elif kind == "pool_open":
            n = self.add(kind, c, member=who, hours=rng.randint(24, 72))
            named_now[3].append((n, who))
        elif kind == "contribute":
            if (ref := self._mine(self.pools, group)) is not None:
                self.add(kind, c, pool=ref[0], owner=ref[1], member=rng.choice(group), points=rng.randint(20, 120))


def generate(seed: int, ops: int, clients: int) -> list[Op]:
    """About `ops` operations (ticks included) from `clients` clients, the same list for the same arguments."""
    planner = _Planner(seed, clients)
    rounds = 0
    while len(planner.ops) < ops:
        planner.round(planner.rng.randint(6, 10) * clients, flash=rounds % 5 == 2)
        planner.add("tick", 0, days=planner.rng.choice([1, 1, 2, 3, 5]))
        rounds += 1
    return planner.ops
