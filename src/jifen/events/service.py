"""Event intake: each event is stored once (its event_id is the idempotency key), evaluated against
the rule set in force when it occurred, and its points posted, all in the caller's transaction, so
the answer to the request already says what the member got (real time).

A batch locks its members once (in id order) and runs each event in its own savepoint: a bad event is
rejected alone and changes nothing; events of one member are taken in the order they occurred, so a
batch gives exactly what the same events sent one by one would.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jifen.errors import Conflict, IdempotencyConflict, InvalidRequest, JifenError, NotFound
from jifen.events.counters import db_counters
from jifen.events.models import Event
from jifen.events.schemas import EventIn
from jifen.idempotency import request_hash
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.members.models import Member
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.rules.engine import AwardLine, EventFacts, MemberFacts, UsageBook, fire, price, usage_keys
from jifen.rules.models import RuleSet, RuleUsage
from jifen.rules.service import doc_of

FUTURE_SLACK = dt.timedelta(minutes=5)  # clock skew allowed between a till and the server
_CLAIM = {d.__name__.rsplit(".", 1)[-1]: d.insert(Event).on_conflict_do_nothing().returning(Event.id)
          for d in (postgresql, sqlite)}
_USAGE_UPSERT = {d.__name__.rsplit(".", 1)[-1]: d.insert(RuleUsage) for d in (postgresql, sqlite)}
_SAVE = update(Event).where(Event.id == bindparam("pk")).values(
    rule_version=bindparam("version"), points=bindparam("points"), result=bindparam("result"))


@dataclass
class Intake:
    """What one ingest call works with: the programme, its clock, its rule versions and wallets."""

    session: Session
    program: Program
    now: dt.datetime
    actor: str | None
    versions: list[RuleSet]
    wallets: dict[str | None, Wallet]
    measures: dict[int, Decimal] = field(default_factory=dict)  # tier measures known in this batch

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.program.timezone)

    def version_at(self, at: dt.datetime) -> RuleSet | None:
        """The version in force at `at`: the latest effective date not after it (newest version on ties)."""
        live = [v for v in self.versions if v.effective_from <= at]
        return max(live, key=lambda v: (v.effective_from, v.version)) if live else None

    def measure_after(self, member: Member, ev: EventIn, points: int) -> dict[int, Decimal] | None:
        """The member's tier measure with this event, read once per batch and then kept up to date in
        memory (None for the score basis, which is read from the database each time)."""
        cfg = tiers.tier_config(self.program)
        if cfg is None or cfg.basis == "score":
            return None
        in_window = self.now - dt.timedelta(days=cfg.window_days) < ev.occurred_at <= self.now
        gain = Decimal(0)
        if in_window and cfg.basis == "points":
            gain = Decimal(points)
        elif in_window and ev.type == "purchase":
            gain = ev.amount or Decimal(0)
        if member.id in self.measures:
            self.measures[member.id] += gain
        else:  # the stored event already counts its amount; its points are saved after this
            known = tiers.measures(self.session, self.program, cfg, self.now, [member.id]).get(member.id, Decimal(0))
            self.measures[member.id] = known + (gain if cfg.basis == "points" else 0)
        return {member.id: self.measures[member.id]}

    def scope(self, wallet: str | None) -> ops.Scope:
        return ops.Scope(self.session, self.program, self.wallets[wallet], self.now, actor=self.actor)


def open_intake(session: Session, program: Program, now: dt.datetime, actor: str | None) -> Intake:
    versions = list(session.scalars(select(RuleSet).where(RuleSet.program_id == program.id)))
    wallets: dict[str | None, Wallet] = {w.code: w for w in program.wallets}
    wallets[None] = next(w for w in program.wallets if w.is_default)
    return Intake(session, program, now, actor, versions, wallets)


def ingest(session: Session, program: Program, events: list[EventIn], *, now: dt.datetime,
           actor: str | None = None, strict: bool = True) -> list[dict]:
    """Process events; one result per event, in the order given. strict: the first error is raised
    (a single event); otherwise a bad event's result carries its error and the others go on."""
    ctx = open_intake(session, program, now, actor)
    ids = sorted({e.member_id for e in events})
    members = {m.member_id: m for m in session.scalars(
        select(Member).where(Member.program_id == program.id, Member.member_id.in_(ids)))}
    lock_members(session, [m.id for m in members.values()])
    order = sorted(range(len(events)), key=lambda i: (events[i].occurred_at, i))
    results: list[dict | None] = [None] * len(events)
    for i in order:
        ev = events[i]
        try:
            with session.begin_nested():
                results[i] = process(ctx, ev, members.get(ev.member_id))
        except JifenError as exc:
            if strict:
                raise
            results[i] = {"event_id": ev.event_id, "status": "rejected",
                          "error": {"code": exc.code, "message": exc.message}}
    return results


def process(ctx: Intake, ev: EventIn, member: Member | None) -> dict:
    if member is None:
        raise NotFound(f"unknown member {ev.member_id!r}", code="unknown_member")
    if ev.occurred_at > ctx.now + FUTURE_SLACK:
        raise InvalidRequest("occurred_at is in the future", code="occurred_in_future")
    payload = ev.model_dump(mode="json")
    digest = request_hash("event", payload)
    pk = ctx.session.execute(_CLAIM[ctx.session.get_bind().dialect.name], {
        "program_id": ctx.program.id, "event_id": ev.event_id, "request_hash": digest, "member_pk": member.id,
        "type": ev.type, "channel": ev.channel, "occurred_at": ev.occurred_at, "amount": ev.amount,
        "order_id": ev.order_id, "data": {"lines": payload["lines"], "attributes": ev.attributes},
        "points": 0, "result": {}, "refunded_amount": Decimal(0), "points_reversed": 0, "received_at": ctx.now,
    }).scalar()
    if pk is None:
        return replay(ctx, ev, digest)
    if ev.type == "refund":
        result, points, version = refund(ctx, ev, member, pk), 0, None
    else:
        result, points, version = earn(ctx, ev, member, pk)
    if ev.type == "refund":
        ctx.measures.pop(member.id, None)  # the refund lowered it: read it afresh when next needed
    raised = {}
    if tiers.moves_measure(ctx.program, ev.type, points) or member.tier is None:
        raised = tiers.upgrade(ctx.session, ctx.program, [member], ctx.now, ctx.measure_after(member, ev, points))
    result["tier"] = member.tier
    if raised:
        result["tier_upgraded"] = raised[member.id]
    ctx.session.execute(_SAVE, {"pk": pk, "version": version, "points": points, "result": result})
    shown = -sum(e["points"] for e in result["entries"]) if ev.type == "refund" else points
    return view(ev.event_id, ev.member_id, ev.type, "processed", version, shown, result)


def replay(ctx: Intake, ev: EventIn, digest: str) -> dict:
    row = ctx.session.scalar(select(Event).where(Event.program_id == ctx.program.id, Event.event_id == ev.event_id))
    if row.request_hash != digest:
        raise IdempotencyConflict(f"event_id {ev.event_id!r} was already used for a different event",
                                  code="event_id_reused")
    return stored_view(row, ev.member_id, "replayed")


def stored_view(row: Event, member_id: str, status: str = "processed") -> dict:
    points = -sum(e["points"] for e in row.result.get("entries", [])) if row.type == "refund" else row.points
    return view(row.event_id, member_id, row.type, status, row.rule_version, points, row.result)


def view(event_id, member_id, type_, status, version, points, result) -> dict:
    return {"event_id": event_id, "member_id": member_id, "type": type_, "status": status, "rule_version": version,
            "points": points, **result}


def earn(ctx: Intake, ev: EventIn, member: Member, pk: int) -> tuple[dict, int, int | None]:
    if ev.type == "purchase" and ev.order_id and _order_taken(ctx, ev, pk):
        raise Conflict(f"order {ev.order_id!r} was already sent as another purchase event", code="duplicate_order")
    rule_set = ctx.version_at(ev.occurred_at)
    if rule_set is None:
        return {"rules": [], "entries": []}, 0, None
    doc = doc_of(rule_set)
    facts = EventFacts(type=ev.type, occurred_at=ev.occurred_at, amount=ev.amount, channel=ev.channel,
                       order_id=ev.order_id, lines=[li.model_dump() for li in ev.lines], attributes=ev.attributes)
    who = member_facts(ctx.program, member, member.tier)
    fired = fire(doc, facts, who, db_counters(ctx.session, member.id, pk, ev.occurred_at, ctx.tz), ctx.tz)
    book = UsageBook(lambda keys: load_usage(ctx.session, ctx.program.id, keys))
    book.preload(usage_keys(doc, fired, member.id, ev.occurred_at, ctx.tz))
    lines = price(doc, fired, facts, who, ctx.tz, book)
    save_usage(ctx.session, ctx.program.id, book)
    entries = post(ctx, ev, member, lines)
    return ({"rules": [line.as_dict() for line in lines], "entries": entries, "member_tier": who.tier},
            sum(line.points for line in lines), rule_set.version)


def member_facts(program: Program, member: Member, tier: str | None) -> MemberFacts:
    """The member as rules see them, with the tier they had when the event happened."""
    cfg = tiers.tier_config(program)
    level = (cfg.level(tier) or cfg.levels[0]) if cfg else None
    return MemberFacts(pk=member.id, member_id=member.member_id, tier=level.code if level else tier,
                       tier_multiplier=level.earn_multiplier if level else Decimal(1), joined_at=member.joined_at,
                       birthday=member.birthday, attributes=member.attributes or {})


def _order_taken(ctx: Intake, ev: EventIn, pk: int) -> bool:
    return ctx.session.scalar(select(Event.id).where(
        Event.program_id == ctx.program.id, Event.order_id == ev.order_id, Event.type == "purchase",
        Event.id != pk).limit(1)) is not None


def post(ctx: Intake, ev: EventIn, member: Member, lines: list[AwardLine]) -> list[dict]:
    """One ledger award per wallet, carrying the event id and the rules that paid."""
    per_wallet: dict[str | None, list[AwardLine]] = defaultdict(list)
    for line in lines:
        if line.points > 0:
            per_wallet[line.wallet].append(line)
    days = ctx.program.pending_days.get(ev.type)
    pending_until = ev.occurred_at + dt.timedelta(days=days) if days else None
    entries = []
    for wallet, paid in per_wallet.items():
        points = sum(line.points for line in paid)
        entry = ops.award(ctx.scope(wallet), member, points, occurred_at=ev.occurred_at, pending_until=pending_until,
                          reference=f"event:{ev.event_id}", reason="rules: " + ", ".join(li.rule for li in paid))
        entries.append({"wallet": ctx.wallets[wallet].code, "entry_id": entry.id, "points": points, "reversed": 0})
    return entries


def load_usage(session: Session, program_id: int, keys: list[tuple[str, int, str]]) -> dict:
    """Current usage for caps and budgets. A member's rows are guarded by the member lock; a
    programme-wide budget row is created if missing and locked, so concurrent awards queue on it."""
    shared = [k for k in keys if k[1] == 0]
    if shared:
        upsert = _USAGE_UPSERT[session.get_bind().dialect.name]
        session.execute(upsert.on_conflict_do_nothing(), [
            {"program_id": program_id, "key": k, "member_pk": 0, "period": p, "points": 0} for k, _, p in shared])
    found = {}
    for key, member_pk, period in keys:
        q = select(RuleUsage.points).where(RuleUsage.program_id == program_id, RuleUsage.key == key,
                                           RuleUsage.member_pk == member_pk, RuleUsage.period == period)
        found[(key, member_pk, period)] = session.scalar(q.with_for_update() if member_pk == 0 else q) or 0
    return found


def save_usage(session: Session, program_id: int, book: UsageBook) -> None:
    if not book.changed:
        return
    upsert = _USAGE_UPSERT[session.get_bind().dialect.name]
    stmt = upsert.on_conflict_do_update(index_elements=["program_id", "key", "member_pk", "period"],
                                        set_={"points": upsert.excluded.points})
    session.execute(stmt, [{"program_id": program_id, "key": k, "member_pk": m, "period": p, "points": book.used[(k, m, p)]}
                           for k, m, p in sorted(book.changed)])


def refund(ctx: Intake, ev: EventIn, member: Member, pk: int) -> dict:
    """Take back the order's points in proportion to the refunded share, cumulatively: several partial
    refunds that add up to the whole order take back exactly what the order earned."""
    if not ev.order_id:
        raise InvalidRequest("a refund needs the order_id of its purchase", code="missing_order_id")
    purchase = ctx.session.scalar(select(Event).where(
        Event.program_id == ctx.program.id, Event.order_id == ev.order_id, Event.type == "purchase"
    ).order_by(Event.id).limit(1))
    if purchase is None:
        raise NotFound(f"no purchase with order_id {ev.order_id!r}", code="unknown_order")
    if purchase.member_pk != member.id:
        raise Conflict(f"order {ev.order_id!r} belongs to another member", code="order_of_another_member")
    order_amount = purchase.amount or Decimal(0)
    remaining = order_amount - purchase.refunded_amount
    amount = remaining if ev.amount is None else ev.amount
    if remaining <= 0:
        raise Conflict(f"order {ev.order_id!r} is already fully refunded", code="already_refunded")
    if amount <= 0 or amount > remaining:
        raise Conflict(f"refund of ¥{amount} exceeds the ¥{remaining} left on order {ev.order_id!r}",
                       code="refund_exceeds_order")
    refunded = purchase.refunded_amount + amount
    entries, reversals = [], []
    for e in purchase.result.get("entries", []):
        target = (Decimal(e["points"]) * refunded / order_amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        n = int(target) - e["reversed"]
        wallet = e["wallet"] if e["wallet"] != ctx.wallets[None].code else None
        if n > 0:  # (a recompute may already have taken some back: never more than the entry has left)
            n = min(n, ops.reversible(ctx.scope(wallet), e["entry_id"]))
        if n > 0:
            reversal = ops.reverse(ctx.scope(wallet), e["entry_id"], n, reason=f"refund {ev.event_id}")
            reversals.append({"wallet": e["wallet"], "entry_id": reversal.id, "points": n})
        entries.append({**e, "reversed": e["reversed"] + max(n, 0)})
    purchase.refunded_amount = refunded
    purchase.points_reversed += sum(r["points"] for r in reversals)
    purchase.result = {**purchase.result, "entries": entries}
    return {"refund_of": purchase.event_id, "refunded_amount": str(amount), "entries": reversals}
