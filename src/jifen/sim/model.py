"""The independent model: what balances, lots and stock should be, in plain dicts, from the acknowledged
operations alone. It shares no code with the ledger: its own lots (drained earliest expiry first), holds,
refund arithmetic, expiry and maturity.

`apply` takes an operation and what the database answered. Where the answer follows from the model (a
member's points, a red packet's shares, a pool's needs) the model predicts it, and a different answer is a
violation; where it depends on the other clients (the last units of a reward), the model follows the answer,
and the totals are checked instead (never below zero: no oversell). A refused operation changes nothing."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from jifen.sim.plan import POOL_REWARD, REWARDS, Op
from jifen.sim.world import CHECK_IN_POINTS, EXPIRY_MONTHS, PENDING_DAYS

KINDS = ("available", "pending", "held", "frozen")
TZ = ZoneInfo("Asia/Shanghai")
GIFTS_PER_DAY, GIFT_POINTS_PER_DAY, PACKET_POINTS_PER_DAY = 10, 2_000, 10_000
# Refusals that depend on other clients' timing: the model follows the database.
RACES = {"out_of_stock"}


class Violation(AssertionError):
    """The database disagrees with the model."""


class Refused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass
class Lot:
    seq: int
    expires_at: dt.datetime
    pending_until: dt.datetime | None
    available: int = 0
    pending: int = 0
    held: int = 0
    frozen: int = 0

    def state(self) -> tuple:
        return (self.expires_at, self.available, self.pending, self.held, self.frozen)


@dataclass
class Purchase:
    member: str
    amount: Decimal
    points: int
    lot: Lot | None
    refunded: Decimal = Decimal(0)
    reversed: int = 0


@dataclass
class Hold:
    member: str
    parts: list[tuple[Lot, int]]
    open: bool = True


@dataclass
class Redemption:
    member: str
    reward: str
    quantity: int
    hold: Hold
    status: str


@dataclass
class Packet:
    sender: str
    shares: list[tuple[int, Hold]]
    expires_at: dt.datetime
    claimed: list[str] = field(default_factory=list)
    status: str = "open"


@dataclass
class Pool:
    owner: str
    expires_at: dt.datetime
    holds: list[tuple[str, Hold]] = field(default_factory=list)
    status: str = "open"

    @property
    def raised(self) -> int:
        return sum(sum(p for _, p in h.parts) for _, h in self.holds)


def add_month(moment: dt.datetime, months: int) -> dt.datetime:
    y, m = divmod(moment.month - 1 + months, 12)
    last = [31, 29 if (moment.year + y) % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m]
    return moment.replace(year=moment.year + y, month=m + 1, day=min(moment.day, last))


class Model:
    def __init__(self, members: list[str], now: dt.datetime):
        self.now = now
        self.lots: dict[str, list[Lot]] = {m: [] for m in members}
        self.checked_in: set[tuple[str, dt.date]] = set()
        self.stock = {code: stock for code, (_, _, stock) in REWARDS.items()}
        self.sold = dict.fromkeys(REWARDS, 0)
        self.purchases: dict[str, Purchase] = {}
        self.redemptions: dict[int, Redemption] = {}
        self.packets: dict[int, Packet] = {}
        self.pools: dict[int, Pool] = {}
        self.gifts: list[tuple[str, dt.datetime, int]] = []
        self.sent: list[tuple[str, dt.datetime, int]] = []
        self.events: Counter[str] = Counter()
        self._seq = itertools.count()

    # ---- what the model reports ------------------------------------------------------------------------
    def balances(self, member: str) -> dict[str, int]:
        return {k: sum(getattr(lot, k) for lot in self.lots[member]) for k in KINDS}

    def lot_states(self, member: str) -> list[tuple]:
        return sorted(lot.state() for lot in self.lots[member] if any(lot.state()[1:]))

    def counts(self) -> dict[str, int]:
        """Rows every acknowledged operation left, once each: events by type, redemptions (a completed pool's
        included), red packets, pools."""
        completed = sum(p.status == "completed" for p in self.pools.values())
        return {**{f"events.{k}": v for k, v in sorted(self.events.items())},
                "redemptions": len(self.redemptions) + completed, "red_packets": len(self.packets), "pools": len(self.pools)}

    # ---- lots --------------------------------------------------------------------------------------------
    def settle(self, member: str) -> None:
        for lot in self.lots[member]:
            if lot.pending and lot.pending_until is not None and lot.pending_until <= self.now:
                lot.available, lot.pending = lot.available + lot.pending, 0
        for lot in self.lots[member]:
            if lot.available and lot.expires_at <= self.now:
                lot.available = 0

    def _new_lot(self, member: str, points: int, earned: dt.datetime, expires: dt.datetime | None = None,
                 pending_until: dt.datetime | None = None) -> Lot:
        lot = Lot(next(self._seq), expires or add_month(earned, EXPIRY_MONTHS), pending_until)
        if pending_until is not None and pending_until > self.now:
            lot.pending = points
        else:
            lot.pending_until, lot.available = None, points
        self.lots[member].append(lot)
        return lot

    def _fifo(self, member: str, kind: str, amount: int) -> list[tuple[Lot, int]]:
        """Which lots pay `amount` of `kind`, earliest expiry first (nothing moved yet)."""
        lots = sorted((lot for lot in self.lots[member] if getattr(lot, kind) > 0), key=lambda lot: (lot.expires_at, lot.seq))
        if sum(getattr(lot, kind) for lot in lots) < amount:
            raise Refused("insufficient_points")
        parts = []
        for lot in lots:
            part = min(amount, getattr(lot, kind))
            if part:
                parts.append((lot, part))
                amount -= part
        return parts

    @staticmethod
    def _move(parts: list[tuple[Lot, int]], source: str, target: str | None) -> None:
        for lot, part in parts:
            setattr(lot, source, getattr(lot, source) - part)
            if target:
                setattr(lot, target, getattr(lot, target) + part)

    def _hold(self, member: str, points: int) -> Hold:
        parts = self._fifo(member, "available", points)
        self._move(parts, "available", "held")
        return Hold(member, parts)

    def _settle_hold(self, hold: Hold, capture: bool) -> None:
        self._move(hold.parts, "held", None if capture else "available")
        hold.open = False
        if not capture:
            self.settle(hold.member)  # released points may be past expiry

    def _give(self, giver: str, receiver: str, points: int) -> None:
        """A transfer: the receiver's new lots keep the giver's expiry dates."""
        parts = self._fifo(giver, "available", points)
        self._move(parts, "available", None)
        for lot, part in parts:
            new = self._new_lot(receiver, part, self.now, lot.expires_at)
            new.available = part

    # ---- operations ------------------------------------------------------------------------------------
    def apply(self, op: Op, answer: dict[str, Any] | None, refused: str | None) -> None:
        """One operation and the database's answer (its result, or the code it was refused with). Handlers
        check everything before they move anything (settling aside, which a later operation would do anyway)."""
        if refused in RACES:  # the database's call: nothing changed
            if op.kind != "redeem" or REWARDS[op.args["reward"]][2] is None:
                raise Violation(f"{op}: refused with {refused}, which only a reward of limited stock may be")
            return
        try:
            predicted = getattr(self, "_" + op.kind)(op, answer)
        except Refused as exc:
            if refused is None:
                raise Violation(f"{op}: acknowledged ({answer}), but the model refuses it ({exc.code})") from None
            if refused != exc.code:
                raise Violation(f"{op}: refused with {refused}, the model expected {exc.code}") from None
            return
        if refused is not None:
            raise Violation(f"{op}: refused with {refused}, the model accepts it ({predicted})")

    def _purchase(self, op: Op, answer: Any) -> int:
        return self._award_purchase(f"ev-{op.n}", op.args["member"], Decimal(op.args["amount"]))

    def _award_purchase(self, event: str, member: str, amount: Decimal) -> int:
        points = int(amount.to_integral_value(ROUND_DOWN))
        self.settle(member)
        lot = self._new_lot(member, points, self.now, pending_until=self.now + dt.timedelta(days=PENDING_DAYS)) \
            if points else None
        self.purchases[event] = Purchase(member, amount, points, lot)
        self.events["purchase"] += 1
        return points

    def _purchases(self, op: Op, answer: Any) -> int:
        return sum(self._award_purchase(f"ev-{op.n}.{j}", m, Decimal(a)) for j, (m, a) in enumerate(op.args["lines"]))

    def _refund(self, op: Op, answer: Any) -> int:
        p = self.purchases.get(op.args["event"])
        if p is None:
            raise Refused("unknown_order")
        remaining = p.amount - p.refunded
        amount = remaining if op.args["amount"] is None else Decimal(op.args["amount"])
        if remaining <= 0:
            raise Refused("already_refunded")
        if amount <= 0 or amount > remaining:
            raise Refused("refund_exceeds_order")
        refunded = p.refunded + amount
        n = int((Decimal(p.points) * refunded / p.amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)) - p.reversed
        take = min(n, p.points - p.reversed)
        if take > 0:
            assert p.lot is not None
            self.settle(p.member)
            own, left = [], take
            for kind in ("pending", "available", "frozen"):  # from the purchase's own lot first
                part = min(left, getattr(p.lot, kind))
                own.append((kind, part))
                left -= part
            if left > self.balances(p.member)["available"] - own[1][1]:
                raise Refused("insufficient_points")  # (the programme allows no debt)
            for kind, part in own:
                setattr(p.lot, kind, getattr(p.lot, kind) - part)
            if left:
                self._move(self._fifo(p.member, "available", left), "available", None)
            p.reversed += take
        p.refunded = refunded
        self.events["refund"] += 1
        return -max(take, 0)

    def _check_in(self, op: Op, answer: Any) -> int:
        member, day = op.args["member"], self.now.astimezone(TZ).date()
        if (member, day) in self.checked_in:
            raise Refused("already_checked_in")
        self.checked_in.add((member, day))
        self.events["check_in"] += 1
        self.settle(member)
        self._new_lot(member, CHECK_IN_POINTS, self.now)
        return CHECK_IN_POINTS

    def _spend(self, op: Op, answer: Any) -> int:
        self.settle(op.args["member"])
        self._move(self._fifo(op.args["member"], "available", op.args["points"]), "available", None)
        return op.args["points"]

    def _adjust(self, op: Op, answer: Any) -> int:
        member, points = op.args["member"], op.args["points"]
        self.settle(member)
        if points > 0:
            self._new_lot(member, points, self.now)
        else:
            self._move(self._fifo(member, "available", -points), "available", None)
        return points

    def _freeze(self, op: Op, answer: Any, source: str = "available", target: str = "frozen") -> int:
        member = op.args["member"]
        self.settle(member)
        amount = op.args["points"] or self.balances(member)[source]
        if amount == 0:
            raise Refused("nothing_to_move")
        self._move(self._fifo(member, source, amount), source, target)
        return amount

    def _unfreeze(self, op: Op, answer: Any) -> int:
        return self._freeze(op, answer, "frozen", "available")

    def _transfer(self, op: Op, answer: Any) -> int:
        return self._move_points(op)

    def _redeem(self, op: Op, answer: Any) -> str:
        member, reward, qty = op.args["member"], op.args["reward"], op.args["quantity"]
        kind, price, _ = REWARDS[reward]
        self.settle(member)
        hold = self._hold(member, price * qty)
        self._take_stock(reward, qty)
        status = "held"
        if kind == "coupon":
            self._settle_hold(hold, capture=True)
            status = "fulfilled"
        self.redemptions[op.n] = Redemption(member, reward, qty, hold, status)
        return status

    def _take_stock(self, reward: str, qty: int) -> None:
        stock = self.stock[reward]
        if stock is not None:
            self.stock[reward] = stock - qty  # checked at the round's end: never below zero
        self.sold[reward] += qty

    def _restock(self, reward: str, qty: int) -> None:
        stock = self.stock[reward]
        if stock is not None:
            self.stock[reward] = stock + qty
        self.sold[reward] -= qty

    def _redemption(self, op: Op, status: str) -> Redemption:
        r = self.redemptions.get(op.args["redemption"])
        if r is None:
            raise Refused("unknown_redemption")
        if r.status != status:
            raise Refused("illegal_transition")
        return r

    def _fulfil(self, op: Op, answer: Any) -> str:
        r = self._redemption(op, "held")
        self._settle_hold(r.hold, capture=True)
        r.status = "fulfilled"
        return r.status

    def _cancel(self, op: Op, answer: Any) -> str:
        r = self._redemption(op, "held")
        self._settle_hold(r.hold, capture=False)
        self._restock(r.reward, r.quantity)
        r.status = "cancelled"
        return r.status

    def _refund_redemption(self, op: Op, answer: Any) -> str:
        r = self._redemption(op, "fulfilled")
        self.settle(r.member)
        for lot, part in r.hold.parts:  # to the very lots that paid
            lot.available += part
        self._restock(r.reward, r.quantity)
        r.status = "refunded"
        return r.status

    def _gift_limits(self, giver: str, points: int) -> None:
        recent = [p for g, at, p in self.gifts if g == giver and at > self.now - dt.timedelta(days=1)]
        if len(recent) >= GIFTS_PER_DAY or sum(recent) + points > GIFT_POINTS_PER_DAY:
            raise Refused("limit_reached")

    def _gift(self, op: Op, answer: Any) -> int:
        self._gift_limits(op.args["member"], op.args["points"])
        self._move_points(op)
        self.gifts.append((op.args["member"], self.now, op.args["points"]))
        return op.args["points"]

    def _move_points(self, op: Op) -> int:
        giver, receiver = op.args["member"], op.args["to"]
        self.settle(giver)
        self.settle(receiver)
        self._give(giver, receiver, op.args["points"])
        return op.args["points"]

    def _red_packet(self, op: Op, answer: Any) -> int:
        sender, points, shares = op.args["member"], op.args["points"], op.args["shares"]
        if sum(p for s, at, p in self.sent if s == sender and at > self.now - dt.timedelta(days=1)) + points > \
                PACKET_POINTS_PER_DAY:
            raise Refused("limit_reached")
        self.settle(sender)
        if self.balances(sender)["available"] < points:
            raise Refused("insufficient_points")
        base, extra = divmod(points, shares)
        parts = [base + (1 if i < extra else 0) for i in range(shares)]
        self.packets[op.n] = Packet(sender, [(p, self._hold(sender, p)) for p in parts],
                                    self.now + dt.timedelta(hours=op.args["hours"]))
        self.sent.append((sender, self.now, points))
        return points

    def _claim(self, op: Op, answer: Any) -> int:
        packet, member = self.packets.get(op.args["packet"]), op.args["member"]
        if packet is None:
            raise Refused("unknown_red_packet")
        if member == packet.sender:
            raise Refused("own_packet")
        if packet.status == "finished":
            raise Refused("packet_empty")
        if packet.status != "open" or packet.expires_at <= self.now:
            raise Refused("packet_closed")
        if member in packet.claimed:
            raise Refused("already_claimed")
        points, hold = packet.shares[len(packet.claimed)]
        self._settle_hold(hold, capture=False)
        self.settle(packet.sender)
        self.settle(member)
        self._give(packet.sender, member, points)
        packet.claimed.append(member)
        if len(packet.claimed) == len(packet.shares):
            packet.status = "finished"
        return points

    def _pool_open(self, op: Op, answer: Any) -> int:
        self.pools[op.n] = Pool(op.args["member"], self.now + dt.timedelta(hours=op.args["hours"]))
        return REWARDS[POOL_REWARD][1]

    def _contribute(self, op: Op, answer: Any) -> str:
        pool, member, points = self.pools.get(op.args["pool"]), op.args["member"], op.args["points"]
        if pool is None:
            raise Refused("unknown_pool")
        if pool.status != "open" or pool.expires_at <= self.now:
            raise Refused("pool_closed")
        need = REWARDS[POOL_REWARD][1] - pool.raised
        if not 1 <= points <= need:
            raise Refused("invalid_points")
        self.settle(member)
        pool.holds.append((member, self._hold(member, points)))
        if points == need:  # complete: every contribution spent, the reward redeemed for the owner
            for _, hold in pool.holds:
                self._settle_hold(hold, capture=True)
            self._take_stock(POOL_REWARD, 1)
            pool.status = "completed"
        return pool.status

    def _tick(self, op: Op, answer: Any) -> None:
        """The clock moves on; the jobs: maturity and expiry for everyone, red packets and pools past their time."""
        self.now += dt.timedelta(days=op.args["days"])
        for member in self.lots:
            self.settle(member)
        for packet in self.packets.values():
            if packet.status == "open" and packet.expires_at <= self.now:
                for _, hold in packet.shares[len(packet.claimed):]:
                    self._settle_hold(hold, capture=False)
                packet.status = "expired"
        for pool in self.pools.values():
            if pool.status == "open" and pool.expires_at <= self.now:
                for _, hold in pool.holds:
                    self._settle_hold(hold, capture=False)
                pool.status = "expired"

    def oversold(self) -> list[str]:
        return [f"reward {code}: {-left} units sold beyond its stock" for code, left in self.stock.items()
                if left is not None and left < 0]
