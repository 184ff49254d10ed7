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
verdict is kept in the event's result (`risk`) when it is not a plain allow with score 0."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from jifen.db import among
from jifen.engagement import tasks
from jifen.engagement.follow_ups import follow_ups
from jifen.engagement.models import MemberCredit, Task
from jifen.errors import IdempotencyConflict, JifenError
from jifen.events.context import Intake, open_intake
from jifen.events.models import Event
from jifen.events.posting import post
from jifen.events.pricing import evaluate, member_facts, rules_result
from jifen.events.refunds import refund
from jifen.events.schemas import EventIn
from jifen.events.store import (
    KNOWN,
    ORDERS_TAKEN,
    check_event,
    duplicate_order,
    event_digest,
    event_row,
    replay,
    save_results,
    view,
)
from jifen.events.usage import save_usage
from jifen.flows.review import hold_earnings
from jifen.members.models import Member
from jifen.programs import tiers
from jifen.programs.models import Program
from jifen.risk import cases as risk_cases
from jifen.risk.devices import sightings_of
from jifen.risk.models import RiskCase
from jifen.risk.restrictions import refusal
from jifen.risk.scoring import Assessor, RiskBlocked, Tx, Verdict
from jifen.rules.engine import AwardLine, EventFacts, UsageBook
from jifen.rules.service import doc_of

# Read and row-locked in one statement, in id order as ledger.engine.lock_members locks them (SQLite renders no
# FOR UPDATE: BEGIN IMMEDIATE serialises its writers). A member locked already in the transaction stays locked.
_MEMBERS = (select(Member).where(Member.program_id == bindparam("program"), among(Member.member_id, "ids"))
            .order_by(Member.id).with_for_update(of=Member))
_CREDITS = select(MemberCredit.member_pk, MemberCredit.score).where(among(MemberCredit.member_pk, "members"))

Reject = Callable[[int, JifenError], None]
# One result dict per event, None until it has one. Any, not `dict | None`: mypy does not narrow results[i].
Results = list[Any]


def ingest(session: Session, program: Program, events: list[EventIn], *, now: dt.datetime,
           actor: str | None = None, strict: bool = True) -> list[dict[str, Any]]:
    """Process events; one result per event, in the order given. strict: the first error is raised
    (a single event); otherwise a bad event's result carries its error and the others go on."""
    ctx = open_intake(session, program, now, actor)
    ids = sorted({e.member_id for e in events})
    members = {m.member_id: m for m in session.scalars(_MEMBERS, {"program": program.id, "ids": ids})}
    pks = [m.id for m in members.values()]
    ctx.credits.update({pk: 100 for pk in pks} | dict(session.execute(_CREDITS, {"members": pks}).all()))
    order = sorted(range(len(events)), key=lambda i: (events[i].occurred_at, i))
    # A refund reverses entries that must exist first, and a score-based tier counts the member's later
    # events once they are stored: such members have their events taken one by one.
    cfg = ctx.ladder
    one_by_one = {e.member_id for e in events if e.type == "refund" or (cfg is not None and cfg.basis == "score")}
    # A budget is shared by all members: spent in the order the events occurred only if the others' events are
    # not taken as a set ahead of these members' (the batch-equivalence property found it). Then the set is
    # taken in runs, each ending where an event of a one-by-one member comes in time.
    budgets = bool(one_by_one) and any(doc_of(v).budgets for v in ctx.versions)
    results: Results = [None] * len(events)

    def reject(i: int, exc: JifenError) -> None:
        if strict:
            raise exc  # (a RiskBlocked carries its verdict: the caller records the case after the rollback)
        results[i] = {"event_id": events[i].event_id, "status": "rejected",
                      "error": {"code": exc.code, "message": exc.message}}
        if isinstance(exc, RiskBlocked):
            risk_cases.record_block(session, program.id, exc, now)
            results[i]["risk"] = exc.verdict.view()

    run: list[int] = []
    singles = []
    for i in order:
        if events[i].member_id not in one_by_one:
            run.append(i)
            continue
        if budgets and run:
            _ingest_set(ctx, events, run, members, results, reject)
            run = []
        if budgets:
            _ingest_single(ctx, events, i, members, results, reject)
        else:
            singles.append(i)
    _ingest_set(ctx, events, run, members, results, reject)
    for i in singles:
        _ingest_single(ctx, events, i, members, results, reject)
    _advance_tasks(ctx, events, order, results, members)
    follow = _follow_ups(ctx, events, results, members)
    if follow:
        ingest(session, program, follow, now=now, actor=actor, strict=False)
    return results

def _ingest_single(ctx: Intake, events: list[EventIn], i: int, members: dict[str, Member], results: Results,
                   reject: Reject) -> None:
    try:
        with ctx.session.begin_nested():
            results[i] = _ingest_one(ctx, events[i], members.get(events[i].member_id))
    except JifenError as exc:
        reject(i, exc)

def _advance_tasks(ctx: Intake, events: list[EventIn], order: list[int], results: Results,
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
        finished = tasks.advance(sc, member, pks[ev.event_id], facts, member_facts(ctx.ladder, member, member.tier))
        if finished:
            results[i]["tasks_completed"] = finished

def _follow_ups(ctx: Intake, events: list[EventIn], results: Results, members: dict[str, Member]) -> list[EventIn]:
    """Referral, attribution and group-buying events that these purchases lead to."""
    bought = [(ev, members[ev.member_id]) for ev, r in zip(events, results, strict=True)
              if ev.type == "purchase" and r and r["status"] == "processed"]
    return follow_ups(ctx.session, ctx.program, bought)

def _ingest_set(ctx: Intake, events: list[EventIn], chosen: list[int], members: dict[str, Member],
                results: Results, reject: Reject) -> None:
    """The set-oriented path (see the module's docstring)."""
    s = ctx.session
    fresh: list[int]
    digests: dict[int, str]
    firsts: dict[str, int]
    fresh, digests, firsts = [], {}, {}
    for i in chosen:
        ev = events[i]
        try:
            check_event(ctx, ev, members.get(ev.member_id))
        except JifenError as exc:
            reject(i, exc)
            continue
        digests[i] = event_digest(ev)
        if ev.event_id in firsts:  # sent twice in the same batch: the second is a replay of the first
            continue
        firsts[ev.event_id] = i
        fresh.append(i)
    known = {r.event_id: r for r in s.scalars(KNOWN, {"program": ctx.program.id, "ids": list(firsts)})} if firsts else {}
    # (no None: the condition drops it, but mypy does not narrow events[i].order_id)
    orders = cast(set[str], {events[i].order_id for i in fresh if events[i].type == "purchase" and events[i].order_id})
    taken = set(s.scalars(ORDERS_TAKEN, {"program": ctx.program.id, "orders": sorted(orders)})) if orders else set()
    todo = []
    for i in fresh:
        ev = events[i]
        if ev.event_id in known:
            continue
        if ev.type == "purchase" and ev.order_id:
            if ev.order_id in taken:
                reject(i, duplicate_order(ev))
                firsts.pop(ev.event_id)
                continue
            taken.add(ev.order_id)
        todo.append(i)
    risk, txs, todo = _risk_gate(ctx, events, todo, members, reject)
    cfg = ctx.ladder
    if cfg is not None and todo:  # measured before the batch is stored (then kept up to date in memory)
        pks = sorted({members[events[i].member_id].id for i in todo})
        ctx.measures.update({pk: Decimal(0) for pk in pks} | tiers.measures(s, ctx.program, cfg, ctx.now, pks))
    stored = ctx.claim([event_row(ctx, events[i], members[events[i].member_id], digests[i]) for i in todo])
    raced = [events[i].event_id for i in todo if events[i].event_id not in stored]
    if raced:  # stored by a concurrent request since we looked: answer as a replay
        known.update({r.event_id: r for r in s.scalars(KNOWN, {"program": ctx.program.id, "ids": raced})})
    todo = [i for i in todo if events[i].event_id in stored]
    measured = dict(ctx.measures)  # before the batch's own events: every pricing pass starts from here
    while True:  # scored once the points are known; blocked events are dropped and the rest evaluated again
        book = ctx.usage_book()
        ctx.measures = dict(measured)
        priced = _price_in_order(ctx, events, todo, members, stored, book)
        verdicts = _risk_score(risk, txs, priced)
        blocked = [i for i, v in verdicts.items() if v.action == "block"]
        if not blocked:
            break
        s.execute(delete(Event).where(Event.id.in_([stored.pop(events[i].event_id) for i in blocked])))
        for i in blocked:
            reject(i, RiskBlocked(verdicts[i], txs[i], "event", events[i].event_id))
        todo = [i for i in todo if i not in blocked]
    ctx.measures = measured  # the tier steps count the batch's events again, as they are posted
    saves = [(i, sum(line.points for line in lines), version,
              _tier_step(ctx, events[i], members[events[i].member_id], sum(line.points for line in lines)))
             for i, lines, version, _ in priced]
    entries = post(ctx, [(events[i], members[events[i].member_id], lines) for i, lines, _, _ in priced])
    save_usage(s, ctx.program.id, book)
    rows = []
    for (i, lines, version, tier_then), (_, points, _, tier_now), paid in zip(priced, saves, entries, strict=True):
        ev = events[i]
        result = {**rules_result(ctx, ev, lines, paid, tier_then), **tier_now, **_risk_result(ctx, txs[i], verdicts.get(i), ev)}
        rows.append((stored[ev.event_id], version, points, result))
        results[i] = view(ev.event_id, ev.member_id, ev.type, "processed", version, points, result)
    save_results(s, rows)
    _risk_hold(ctx, events, verdicts, members)
    for i in chosen:  # replays: of earlier requests, of concurrent ones, of an event sent twice in this batch
        ev = events[i]
        if results[i] is not None or i not in digests:
            continue
        first = firsts.get(ev.event_id)
        try:
            if ev.event_id in known:
                results[i] = replay(known[ev.event_id], ev, digests[i])
            elif first is not None and first != i and results[first] is not None:
                if digests[first] != digests[i]:
                    raise IdempotencyConflict(f"event_id {ev.event_id!r} was sent twice with different bodies",
                                              code="event_id_reused")
                refused = results[first]["status"] == "rejected"  # (by risk control): so is its twin
                results[i] = {**results[first], **({} if refused else {"status": "replayed"})}
            else:
                raise duplicate_order(ev)  # its twin was refused
        except JifenError as exc:
            reject(i, exc)

def _price_in_order(ctx: Intake, events: list[EventIn], todo: list[int], members: dict[str, Member],
                    stored: dict[str, int], book: UsageBook) -> list[tuple[int, list[AwardLine], int | None, str | None]]:
    """Each event priced, in the order they occurred, with the tier its member has by then: an earlier event
    of the batch that qualifies the member for a higher tier raises it for the later ones, as the same events
    sent one by one would (the upgrade itself is written by _tier_step once the batch is priced)."""
    cfg = ctx.ladder
    tier_now: dict[int, str | None] = {}
    priced = []
    for i in todo:
        ev, member = events[i], members[events[i].member_id]
        tier = tier_now.get(member.id, member.tier)
        lines, version, tier_then = evaluate(ctx, ev, member, stored[ev.event_id], book, tier)
        priced.append((i, lines, version, tier_then))
        points = sum(line.points for line in lines)
        if cfg is None or not (tiers.moves_measure(cfg, ev.type, points) or tier is None):
            continue
        measure = ctx.measure_after(member, ev, points)
        rank = tiers.qualified_rank(cfg, measure[member.id], ctx.now) if measure is not None else 0
        if rank > cfg.rank(tier):
            tier_now[member.id] = cfg.levels[rank].code
    return priced


def _tier_step(ctx: Intake, ev: EventIn, member: Member, points: int) -> dict[str, Any]:
    """Real-time upgrade after an event; the tier the member has now, and whether it just rose."""
    raised: dict[int, str] = {}
    if tiers.moves_measure(ctx.ladder, ev.type, points) or member.tier is None:
        raised = tiers.upgrade(ctx.session, ctx.program, [member], ctx.now, ctx.measure_after(member, ev, points),
                               ctx.ladder)
    return {"tier": member.tier, **({"tier_upgraded": raised[member.id]} if raised else {})}

def _ingest_one(ctx: Intake, ev: EventIn, member: Member | None) -> dict[str, Any]:
    """One event on its own (members with a refund in the batch), inside the caller's savepoint."""
    check_event(ctx, ev, member)
    assert member is not None  # check_event refuses an unknown member
    risk, txs, kept = _risk_gate(ctx, [ev], [0], {ev.member_id: member}, _raise)
    digest = event_digest(ev)
    stored = ctx.claim([event_row(ctx, ev, member, digest)])
    if ev.event_id not in stored:
        # Stored by a concurrent request since: it is there.
        row = cast(Event, ctx.session.scalar(KNOWN, {"program": ctx.program.id, "ids": [ev.event_id]}))
        return replay(row, ev, digest)
    pk = stored[ev.event_id]
    if ev.type == "refund":
        result, points, version = refund(ctx, ev, member), 0, None
        ctx.measures.pop(member.id, None)  # the refund lowered it: read it afresh when next needed
    else:
        if ev.type == "purchase" and ev.order_id and ctx.session.scalar(
                ORDERS_TAKEN.where(Event.id != pk), {"program": ctx.program.id, "orders": [ev.order_id]}):
            raise duplicate_order(ev)
        book = ctx.usage_book()
        lines, version, tier_then = evaluate(ctx, ev, member, pk, book, member.tier)
        verdicts = _risk_score(risk, txs, [(0, lines, version, tier_then)])
        if 0 in verdicts and verdicts[0].action == "block":
            raise RiskBlocked(verdicts[0], txs[0], "event", ev.event_id)  # the savepoint takes the event back
        save_usage(ctx.session, ctx.program.id, book)
        points = sum(line.points for line in lines)
        (paid,) = post(ctx, [(ev, member, lines)])
        result = {**rules_result(ctx, ev, lines, paid, tier_then), **_risk_result(ctx, txs[0], verdicts.get(0), ev)}
    result |= _tier_step(ctx, ev, member, points)
    save_results(ctx.session, [(pk, version, points, result)])
    if ev.type != "refund":
        _risk_hold(ctx, [ev], verdicts, {ev.member_id: member})
    shown = -sum(e["points"] for e in result["entries"]) if ev.type == "refund" else points
    return view(ev.event_id, ev.member_id, ev.type, "processed", version, shown, result)

def _raise(_i: int, exc: JifenError) -> None:
    raise exc

def _risk_gate(ctx: Intake, events: list[EventIn], idx: list[int], members: dict[str, Member],
               reject: Reject) -> tuple[Assessor, dict[int, Tx], list[int]]:
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

def _risk_score(risk: Assessor, txs: dict[int, Tx], priced: list[tuple[Any, ...]]) -> dict[int, Verdict]:
    """{event index: verdict} for the events that earn points (the others count in the windows only)."""
    order = [i for i, *_ in priced]
    for i, lines, *_ in priced:
        txs[i].points = sum(line.points for line in lines)
    verdicts = risk.score([txs[i] for i in order], [txs[i].points > 0 for i in order])
    return {i: v for i, v in zip(order, verdicts, strict=True) if v is not None}

def _risk_result(ctx: Intake, tx: Tx, verdict: Verdict | None, ev: EventIn) -> dict[str, Any]:
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
            case = ctx.session.get_one(RiskCase, v.case_id)
            hold_earnings(ctx.scope(None), case, members[events[i].member_id], [events[i].event_id])
