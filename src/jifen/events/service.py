"""Event intake: each event is stored once (its event_id is the idempotency key), evaluated against the
rule set in force when it occurred, and its points posted, all in the caller's transaction, so the
answer to the request already says what the member got (real time).

A batch is processed as a set: members are looked up and locked once (in id order), replays and
duplicate orders found with one query each, the new events stored with one insert, tier measures read
with one query, rules evaluated event by event in memory (each member's events in the order they
occurred, so a batch gives exactly what the same events sent one by one would), and the awards written
together (`ledger.bulk.award_many`). A member with a refund in the batch (or under a score-based tier)
has their events taken one by one instead, each in its own savepoint.

Risk control (risk/scoring.py) sees the batch twice: before it is stored (device/IP sightings recorded;
events of blacklisted or frozen members refused with `member_restricted`) and once its points are known,
before they are posted (one score per earning event, the anomaly model over the whole batch at once). A
blocked event is refused with `risk_blocked` and leaves nothing behind but its case and alert (its row is
deleted and the rest of the batch evaluated again without it); a reviewed one's points are frozen; the
verdict is kept in the event's result (`risk`) when it is not a plain allow with score 0.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jifen.engagement import tasks
from jifen.engagement.follow_ups import follow_ups
from jifen.engagement.models import MemberCredit, Task
from jifen.errors import Conflict, IdempotencyConflict, InvalidRequest, JifenError, NotFound
from jifen.events.counters import db_counters
from jifen.events.models import Event
from jifen.events.refunds import refund
from jifen.events.schemas import EventIn
from jifen.events.usage import load_usage, save_usage
from jifen.flows.review import hold_earnings
from jifen.idempotency import request_hash
from jifen.ledger import operations as ops
from jifen.ledger.bulk import AwardItem, award_many
from jifen.ledger.engine import lock_members
from jifen.members.models import Member
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.risk import cases as risk_cases
from jifen.risk.devices import sightings_of
from jifen.risk.restrictions import refusal
from jifen.risk.scoring import Assessor, RiskBlocked, Tx, Verdict
from jifen.rules.engine import AwardLine, EventFacts, MemberFacts, UsageBook, fire, price
from jifen.rules.models import RuleSet
from jifen.rules.service import doc_of

FUTURE_SLACK = dt.timedelta(minutes=5)  # clock skew allowed between a till and the server

_DIALECTS = {d.__name__.rsplit(".", 1)[-1]: d for d in (postgresql, sqlite)}
_CLAIM = {name: d.insert(Event).on_conflict_do_nothing().returning(Event.id, Event.event_id)
          for name, d in _DIALECTS.items()}
_SAVE = update(Event).where(Event.id == bindparam("pk")).values(
    rule_version=bindparam("version"), points=bindparam("points"), result=bindparam("result"))
_KNOWN = select(Event).where(Event.program_id == bindparam("program"),
                             Event.event_id.in_(bindparam("ids", expanding=True)))
_ORDERS_TAKEN = select(Event.order_id).where(Event.program_id == bindparam("program"), Event.type == "purchase",
                                             Event.order_id.in_(bindparam("orders", expanding=True)))


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
    credits: dict[int, int] = field(default_factory=dict)
    failed: dict[str, list[dict]] = field(default_factory=dict)  # rules skipped per event id (rules/engine.fire)

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

    def credit(self, member: Member) -> int:
        """The member's credit score (100 when never lowered), read once per intake."""
        if member.id not in self.credits:
            self.credits[member.id] = self.session.scalar(
                select(MemberCredit.score).where(MemberCredit.member_pk == member.id)) or 100
        return self.credits[member.id]

    def scope(self, wallet: str | None) -> ops.Scope:
        return ops.Scope(self.session, self.program, self.wallets[wallet], self.now, actor=self.actor)

    def usage_book(self) -> UsageBook:
        return UsageBook(lambda keys: load_usage(self.session, self.program.id, keys))

    def claim(self, rows: list[dict]) -> dict[str, int]:
        """Store new events; {event_id: pk} of those stored (an id already taken is left out)."""
        if not rows:
            return {}
        stmt = _CLAIM[self.session.get_bind().dialect.name]
        return {eid: pk for pk, eid in self.session.connection().execute(stmt, rows)}


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
    ctx.credits.update({m.id: 100 for m in members.values()} | dict(session.execute(
        select(MemberCredit.member_pk, MemberCredit.score).where(
            MemberCredit.member_pk.in_([m.id for m in members.values()] or [0]))).all()))
    order = sorted(range(len(events)), key=lambda i: (events[i].occurred_at, i))
    # A refund reverses entries that must exist first, and a score-based tier counts the member's later
    # events once they are stored: such members have their events taken one by one.
    cfg = tiers.tier_config(program)
    one_by_one = {e.member_id for e in events if e.type == "refund" or (cfg is not None and cfg.basis == "score")}
    results: list[dict | None] = [None] * len(events)

    def reject(i: int, exc: JifenError) -> None:
        if strict:
            raise exc  # (a RiskBlocked carries its verdict: the caller records the case after the rollback)
        results[i] = {"event_id": events[i].event_id, "status": "rejected",
                      "error": {"code": exc.code, "message": exc.message}}
        if isinstance(exc, RiskBlocked):
            risk_cases.record_block(session, program.id, exc, now)
            results[i]["risk"] = exc.verdict.view()

    as_set = [i for i in order if events[i].member_id not in one_by_one]
    _ingest_set(ctx, events, as_set, members, results, reject)
    for i in order:
        if events[i].member_id in one_by_one:
            try:
                with session.begin_nested():
                    results[i] = _ingest_one(ctx, events[i], members.get(events[i].member_id))
            except JifenError as exc:
                reject(i, exc)
    _advance_tasks(ctx, events, order, results, members)
    follow = _follow_ups(ctx, events, results, members)
    if follow:
        ingest(session, program, follow, now=now, actor=actor, strict=False)
    return results


def _advance_tasks(ctx: Intake, events: list[EventIn], order: list[int], results: list,
                   members: dict[str, Member]) -> None:
    """Processed events count towards the members' tasks, in the order they occurred."""
    done = [i for i in order if results[i] and results[i]["status"] == "processed" and events[i].type != "refund"]
    if not done or not ctx.session.scalar(select(Task.id).where(Task.program_id == ctx.program.id,
                                                                 Task.active.is_(True)).limit(1)):
        return
    pks = dict(ctx.session.execute(select(Event.event_id, Event.id).where(
        Event.program_id == ctx.program.id, Event.event_id.in_([events[i].event_id for i in done]))).all())
    sc = ctx.scope(None)
    for i in done:
        ev, member = events[i], members[events[i].member_id]
        facts = EventFacts(type=ev.type, occurred_at=ev.occurred_at, amount=ev.amount, channel=ev.channel,
                           order_id=ev.order_id, lines=[li.model_dump() for li in ev.lines], attributes=ev.attributes)
        finished = tasks.advance(sc, member, pks[ev.event_id], facts, member_facts(ctx.program, member, member.tier))
        if finished:
            results[i]["tasks_completed"] = finished


def _follow_ups(ctx: Intake, events: list[EventIn], results: list, members: dict[str, Member]):
    """Referral, attribution and group-buying events that these purchases lead to."""
    bought = [(ev, members[ev.member_id]) for ev, r in zip(events, results, strict=True)
              if ev.type == "purchase" and r and r["status"] == "processed"]
    return follow_ups(ctx.session, ctx.program, bought)


def _check(ctx: Intake, ev: EventIn, member: Member | None) -> None:
    if member is None:
        raise NotFound(f"unknown member {ev.member_id!r}", code="unknown_member")
    if member.erased_at is not None:  # anonymised (members/privacy.py): nothing more is earned
        raise Conflict(f"member {ev.member_id!r} was erased", code="member_erased")
    if ev.occurred_at > ctx.now + FUTURE_SLACK:
        raise InvalidRequest("occurred_at is in the future", code="occurred_in_future")


def _row(ctx: Intake, ev: EventIn, member: Member, digest: str) -> dict:
    return {"program_id": ctx.program.id, "event_id": ev.event_id, "request_hash": digest, "member_pk": member.id,
            "type": ev.type, "channel": ev.channel, "occurred_at": ev.occurred_at, "amount": ev.amount,
            "order_id": ev.order_id, "data": {"lines": [li.model_dump(mode="json") for li in ev.lines],
                                              "attributes": ev.attributes},
            "points": 0, "result": {}, "refunded_amount": Decimal(0), "points_reversed": 0, "received_at": ctx.now}


def _digest(ev: EventIn) -> str:
    return request_hash("event", ev.model_dump(mode="json"))


def _replay(row: Event, ev: EventIn, digest: str) -> dict:
    if row.request_hash != digest:
        raise IdempotencyConflict(f"event_id {ev.event_id!r} was already used for a different event",
                                  code="event_id_reused")
    return stored_view(row, ev.member_id, "replayed")


def _duplicate_order(ev: EventIn) -> Conflict:
    return Conflict(f"order {ev.order_id!r} was already sent as another purchase event", code="duplicate_order")


def _ingest_set(ctx: Intake, events: list[EventIn], chosen: list[int], members: dict[str, Member],
                results: list, reject) -> None:
    """The set-oriented path (see the module's docstring)."""
    s = ctx.session
    fresh, digests, firsts = [], {}, {}
    for i in chosen:
        ev = events[i]
        try:
            _check(ctx, ev, members.get(ev.member_id))
        except JifenError as exc:
            reject(i, exc)
            continue
        digests[i] = _digest(ev)
        if ev.event_id in firsts:  # sent twice in the same batch: the second is a replay of the first
            continue
        firsts[ev.event_id] = i
        fresh.append(i)
    known = {r.event_id: r for r in s.scalars(_KNOWN, {"program": ctx.program.id, "ids": list(firsts)})} if firsts else {}
    orders = {events[i].order_id for i in fresh if events[i].type == "purchase" and events[i].order_id}
    taken = set(s.scalars(_ORDERS_TAKEN, {"program": ctx.program.id, "orders": sorted(orders)})) if orders else set()
    todo = []
    for i in fresh:
        ev = events[i]
        if ev.event_id in known:
            continue
        if ev.type == "purchase" and ev.order_id:
            if ev.order_id in taken:
                reject(i, _duplicate_order(ev))
                firsts.pop(ev.event_id)
                continue
            taken.add(ev.order_id)
        todo.append(i)
    risk, txs, todo = _risk_gate(ctx, events, todo, members, reject)
    cfg = tiers.tier_config(ctx.program)
    if cfg is not None and todo:  # measured before the batch is stored (then kept up to date in memory)
        pks = sorted({members[events[i].member_id].id for i in todo})
        ctx.measures.update({pk: Decimal(0) for pk in pks} | tiers.measures(s, ctx.program, cfg, ctx.now, pks))
    stored = ctx.claim([_row(ctx, events[i], members[events[i].member_id], digests[i]) for i in todo])
    raced = [events[i].event_id for i in todo if events[i].event_id not in stored]
    if raced:  # stored by a concurrent request since we looked: answer as a replay
        known.update({r.event_id: r for r in s.scalars(_KNOWN, {"program": ctx.program.id, "ids": raced})})
    todo = [i for i in todo if events[i].event_id in stored]
    while True:  # scored once the points are known; blocked events are dropped and the rest evaluated again
        book = ctx.usage_book()
        priced = [(i, *evaluate(ctx, events[i], members[events[i].member_id], stored[events[i].event_id], book))
                  for i in todo]
        verdicts = _risk_score(risk, txs, priced)
        blocked = [i for i, v in verdicts.items() if v.action == "block"]
        if not blocked:
            break
        s.execute(delete(Event).where(Event.id.in_([stored.pop(events[i].event_id) for i in blocked])))
        for i in blocked:
            reject(i, RiskBlocked(verdicts[i], txs[i], "event", events[i].event_id))
        todo = [i for i in todo if i not in blocked]
    saves = [(i, sum(line.points for line in lines), version,
              _tier_step(ctx, events[i], members[events[i].member_id], sum(line.points for line in lines)))
             for i, lines, version, _ in priced]
    entries = post(ctx, [(events[i], members[events[i].member_id], lines) for i, lines, _, _ in priced])
    save_usage(s, ctx.program.id, book)
    rows = []
    for (i, lines, version, tier_then), (_, points, _, tier_now), paid in zip(priced, saves, entries, strict=True):
        ev = events[i]
        result = {**_rules_result(ctx, ev, lines, paid, tier_then), **tier_now, **_risk_result(ctx, txs[i], verdicts.get(i), ev)}
        rows.append({"pk": stored[ev.event_id], "version": version, "points": points, "result": result})
        results[i] = view(ev.event_id, ev.member_id, ev.type, "processed", version, points, result)
    if rows:
        s.connection().execute(_SAVE, rows)
    _risk_hold(ctx, events, verdicts, members)
    for i in chosen:  # replays: of earlier requests, of concurrent ones, of an event sent twice in this batch
        ev = events[i]
        if results[i] is not None or i not in digests:
            continue
        first = firsts.get(ev.event_id)
        try:
            if ev.event_id in known:
                results[i] = _replay(known[ev.event_id], ev, digests[i])
            elif first is not None and first != i and results[first] is not None:
                if digests[first] != digests[i]:
                    raise IdempotencyConflict(f"event_id {ev.event_id!r} was sent twice with different bodies",
                                              code="event_id_reused")
                refused = results[first]["status"] == "rejected"  # (by risk control): so is its twin
                results[i] = {**results[first], **({} if refused else {"status": "replayed"})}
            else:
                raise _duplicate_order(ev)  # its twin was refused
        except JifenError as exc:
            reject(i, exc)


def _tier_step(ctx: Intake, ev: EventIn, member: Member, points: int) -> dict:
    """Real-time upgrade after an event; the tier the member has now, and whether it just rose."""
    raised = {}
    if tiers.moves_measure(ctx.program, ev.type, points) or member.tier is None:
        raised = tiers.upgrade(ctx.session, ctx.program, [member], ctx.now, ctx.measure_after(member, ev, points))
    return {"tier": member.tier, **({"tier_upgraded": raised[member.id]} if raised else {})}


def _ingest_one(ctx: Intake, ev: EventIn, member: Member | None) -> dict:
    """One event on its own (members with a refund in the batch), inside the caller's savepoint."""
    _check(ctx, ev, member)
    risk, txs, kept = _risk_gate(ctx, [ev], [0], {ev.member_id: member}, _raise)
    digest = _digest(ev)
    stored = ctx.claim([_row(ctx, ev, member, digest)])
    if ev.event_id not in stored:
        row = ctx.session.scalar(_KNOWN, {"program": ctx.program.id, "ids": [ev.event_id]})
        return _replay(row, ev, digest)
    pk = stored[ev.event_id]
    if ev.type == "refund":
        result, points, version = refund(ctx, ev, member), 0, None
        ctx.measures.pop(member.id, None)  # the refund lowered it: read it afresh when next needed
    else:
        if ev.type == "purchase" and ev.order_id and ctx.session.scalar(
                _ORDERS_TAKEN.where(Event.id != pk), {"program": ctx.program.id, "orders": [ev.order_id]}):
            raise _duplicate_order(ev)
        book = ctx.usage_book()
        lines, version, tier_then = evaluate(ctx, ev, member, pk, book)
        verdicts = _risk_score(risk, txs, [(0, lines, version, tier_then)])
        if 0 in verdicts and verdicts[0].action == "block":
            raise RiskBlocked(verdicts[0], txs[0], "event", ev.event_id)  # the savepoint takes the event back
        save_usage(ctx.session, ctx.program.id, book)
        points = sum(line.points for line in lines)
        (paid,) = post(ctx, [(ev, member, lines)])
        result = {**_rules_result(ctx, ev, lines, paid, tier_then), **_risk_result(ctx, txs[0], verdicts.get(0), ev)}
    result |= _tier_step(ctx, ev, member, points)
    ctx.session.execute(_SAVE, {"pk": pk, "version": version, "points": points, "result": result})
    if ev.type != "refund":
        _risk_hold(ctx, [ev], verdicts, {ev.member_id: member})
    shown = -sum(e["points"] for e in result["entries"]) if ev.type == "refund" else points
    return view(ev.event_id, ev.member_id, ev.type, "processed", version, shown, result)


def _raise(_i: int, exc: JifenError) -> None:
    raise exc


def _risk_gate(ctx: Intake, events: list[EventIn], idx: list[int], members: dict[str, Member], reject):
    """Before the events are stored: sightings recorded, restricted members' events refused. Returns the
    assessor, each event's transaction, and the events that go on."""
    txs = {i: Tx(members[events[i].member_id], "earn", events[i].occurred_at, event_type=events[i].type,
                 sightings=sightings_of(events[i].attributes)) for i in idx}
    risk = Assessor(ctx.session, ctx.program, ctx.now)
    risk.prepare(list(txs.values()))
    kept = []
    for i in idx:
        if risk.refused(txs[i]):
            reject(i, refusal(events[i].member_id))
        else:
            kept.append(i)
    return risk, txs, kept


def _risk_score(risk: Assessor, txs: dict[int, Tx], priced: list[tuple]) -> dict[int, Verdict]:
    """{event index: verdict} for the events that earn points (the others count in the windows only)."""
    order = [i for i, *_ in priced]
    for i, lines, *_ in priced:
        txs[i].points = sum(line.points for line in lines)
    verdicts = risk.score([txs[i] for i in order], [txs[i].points > 0 for i in order])
    return {i: v for i, v in zip(order, verdicts, strict=True) if v is not None}


def _rules_result(ctx: Intake, ev: EventIn, lines: list[AwardLine], paid: list[dict], tier_then) -> dict:
    """What the rules gave an event; `rule_errors` names rules skipped because their condition failed."""
    failed = ctx.failed.pop(ev.event_id, None)
    return {"rules": [line.as_dict() for line in lines], "entries": paid, "member_tier": tier_then,
            **({"rule_errors": failed} if failed else {})}


def _risk_result(ctx: Intake, tx: Tx, verdict: Verdict | None, ev: EventIn) -> dict:
    """The verdict as kept in the event's result (with the case a review opened)."""
    if verdict is None or (verdict.score == 0 and verdict.action == "allow"):
        return {}
    risk_cases.record(ctx.session, ctx.program.id, (tx.member.id, tx.member.member_id), tx.at, verdict, "event",
                      ev.event_id, ctx.now)
    return {"risk": verdict.view()}


def _risk_hold(ctx: Intake, events: list[EventIn], verdicts: dict[int, Verdict], members: dict[str, Member]) -> None:
    """Reviewed events: their points (and the member's burst of the last hour) frozen until decided."""
    for i, v in verdicts.items():
        if v.action == "review" and v.case_id:
            case = ctx.session.get(risk_cases.RiskCase, v.case_id)
            hold_earnings(ctx.scope(None), case, members[events[i].member_id], [events[i].event_id])


def stored_view(row: Event, member_id: str, status: str = "processed") -> dict:
    points = -sum(e["points"] for e in row.result.get("entries", [])) if row.type == "refund" else row.points
    return view(row.event_id, member_id, row.type, status, row.rule_version, points, row.result)


def view(event_id, member_id, type_, status, version, points, result) -> dict:
    return {"event_id": event_id, "member_id": member_id, "type": type_, "status": status, "rule_version": version,
            "points": points, **result}


def evaluate(ctx: Intake, ev: EventIn, member: Member, pk: int, book: UsageBook):
    """(award lines, rule version, the member's tier then) for a stored event; nothing posted yet."""
    who = member_facts(ctx.program, member, member.tier, ctx.credit(member))
    rule_set = ctx.version_at(ev.occurred_at)
    if rule_set is None:
        return [], None, who.tier
    doc = doc_of(rule_set)
    facts = EventFacts(type=ev.type, occurred_at=ev.occurred_at, amount=ev.amount, channel=ev.channel,
                       order_id=ev.order_id, lines=[li.model_dump() for li in ev.lines], attributes=ev.attributes)
    failed = ctx.failed[ev.event_id] = []  # afresh: a batch may evaluate an event again
    fired = fire(doc, facts, who, db_counters(ctx.session, member.id, pk, ev.occurred_at, ctx.tz), ctx.tz, failed)
    return price(doc, fired, facts, who, ctx.tz, book), rule_set.version, who.tier


def member_facts(program: Program, member: Member, tier: str | None, credit: int = 100) -> MemberFacts:
    """The member as rules see them, with the tier they had when the event happened."""
    cfg = tiers.tier_config(program)
    level = (cfg.level(tier) or cfg.levels[0]) if cfg else None
    return MemberFacts(pk=member.id, member_id=member.member_id, tier=level.code if level else tier,
                       tier_multiplier=level.earn_multiplier if level else Decimal(1), joined_at=member.joined_at,
                       birthday=member.birthday, attributes=member.attributes or {}, credit=credit)


def post(ctx: Intake, priced: list[tuple[EventIn, Member, list[AwardLine]]]) -> list[list[dict]]:
    """The awards of many events, written together per wallet: one ledger entry per event and wallet,
    carrying the event id and the rules that paid. Returns each event's entries."""
    days = ctx.program.pending_days
    per_wallet: dict[str | None, list[tuple[int, AwardItem]]] = defaultdict(list)
    for n, (ev, member, lines) in enumerate(priced):
        paid: dict[str | None, list[AwardLine]] = defaultdict(list)
        for line in lines:
            if line.points > 0:
                paid[line.wallet].append(line)
        pending_until = ev.occurred_at + dt.timedelta(days=days[ev.type]) if days.get(ev.type) else None
        for wallet, wl in paid.items():
            per_wallet[wallet].append((n, AwardItem(member, sum(li.points for li in wl), ev.occurred_at, pending_until,
                                                    f"event:{ev.event_id}", "rules: " + ", ".join(li.rule for li in wl))))
    out: list[list[dict]] = [[] for _ in priced]
    for wallet, items in per_wallet.items():
        for (n, item), entry in zip(items, award_many(ctx.scope(wallet), [it for _, it in items]), strict=True):
            out[n].append({"wallet": ctx.wallets[wallet].code, "entry_id": entry.id, "points": item.points,
                           "reversed": 0})
    return out
