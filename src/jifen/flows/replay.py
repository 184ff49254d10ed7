"""Replaying stored events under a rule set: what-if simulation and corrections of past awards.

Both re-evaluate the events exactly as intake did (same counters over the stored history, the tier the
member had then), with caps and budgets counted afresh from the start of the replayed range.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from jifen.events.context import Intake, open_intake
from jifen.events.counters import db_counters
from jifen.events.models import Event
from jifen.events.pricing import member_facts
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.ledger.models import JournalEntry
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.risk.restrictions import ensure_unrestricted
from jifen.rules.engine import AwardLine, EventFacts, UsageBook, fire, price
from jifen.rules.schema import RuleSetDoc
from jifen.rules.service import doc_of, ladder


@dataclass
class Replayed:
    row: Event
    member: Member
    lines: list[AwardLine]  # AwardLine under the replayed rules
    kept: Decimal  # share of the order not refunded (1 for events without an amount)
    failed: list[dict[str, Any]]  # rules skipped because their condition failed ({rule, error})

    def net(self, wallet_of: Callable[[str | None], str]) -> dict[str, int]:
        """Points per wallet after the refunds the event has had (rounded as refunds round)."""
        out: dict[str, int] = defaultdict(int)
        for line in self.lines:
            out[wallet_of(line.wallet)] += line.points
        return {w: p - int((p * (1 - self.kept)).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for w, p in out.items()}


Progress = Callable[[int, int], None]  # (events replayed, events in all)
PROGRESS_EVERY = 200  # events between two progress reports


def _earning(program: Program, start: dt.datetime, end: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    return (Event.program_id == program.id, Event.type != "refund", Event.occurred_at >= start,
            Event.occurred_at < end)


def count_replayed(session: Session, program: Program, start: dt.datetime, end: dt.datetime) -> int:
    """How many events `replay` goes through over [start, end)."""
    return session.scalar(select(func.count()).select_from(Event).where(*_earning(program, start, end))) or 0


def replay(session: Session, program: Program, start: dt.datetime, end: dt.datetime,
           doc_for: Callable[[Event], RuleSetDoc | None]) -> Iterator[Replayed]:
    """Every earning event in [start, end) in the order it happened, priced by doc_for(event row)."""
    tz = ZoneInfo(program.timezone)
    book = UsageBook(lambda keys: {})
    members: dict[int, Member] = {}
    q = (select(Event).where(*_earning(program, start, end)).order_by(Event.occurred_at, Event.id)
         .execution_options(yield_per=1000))
    for row in session.scalars(q):
        doc = doc_for(row)
        member = members.get(row.member_pk) or members.setdefault(row.member_pk, session.get_one(Member, row.member_pk))
        lines: list[AwardLine]
        failed: list[dict[str, Any]]
        lines, failed = [], []
        if doc is not None:
            facts = EventFacts(type=row.type, occurred_at=row.occurred_at, amount=row.amount, channel=row.channel,
                               order_id=row.order_id, lines=row.data.get("lines", []),
                               attributes=row.data.get("attributes", {}))
            who = member_facts(ladder(program, doc), member, row.result.get("member_tier"))
            fired = fire(doc, facts, who, db_counters(session, member.id, row.id, row.occurred_at, tz), tz, failed)
            lines = price(doc, fired, facts, who, tz, book)
        kept = Decimal(1) - (row.refunded_amount / row.amount if row.amount else Decimal(0))
        yield Replayed(row, member, lines, kept, failed)


def simulate(session: Session, program: Program, draft: RuleSetDoc, start: dt.datetime,
             end: dt.datetime, progress: Progress | None = None) -> dict[str, Any]:
    """Points and ¥ liability the draft would have given over [start, end), beside the rules in force;
    `rules` has every rule that gave points under either, with the members whose points from it differ.
    `progress(done, total)` is called every PROGRESS_EVERY events and once at the end."""
    total = 0
    if progress:
        total = count_replayed(session, program, start, end)
        progress(0, total)
    intake = open_intake(session, program, end, None)
    default = intake.wallets[None].code

    def wallet_of(code: str | None) -> str:
        return code or default

    def in_force(row: Event) -> RuleSetDoc | None:
        rs = intake.version_at(row.occurred_at)
        return doc_of(rs) if rs else None

    totals = {"baseline": 0, "draft": 0}
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    by_sponsor: dict[str, Counter[str]] = defaultdict(Counter)
    failures: dict[str, Counter[str]] = defaultdict(Counter)  # rule -> error -> events (the draft's)
    affected: set[int] = set()
    affected_by_rule: dict[str, set[int]] = defaultdict(set)
    events = 0
    draft_rows = replay(session, program, start, end, lambda row: draft)
    for base, new in zip(replay(session, program, start, end, in_force), draft_rows, strict=True):
        events += 1
        b, d = sum(base.net(wallet_of).values()), sum(new.net(wallet_of).values())
        totals["baseline"] += b
        totals["draft"] += d
        if b != d:
            affected.add(base.row.member_pk)
        per_rule: dict[str, Counter[str]] = defaultdict(Counter)
        for which, r in (("baseline", base), ("draft", new)):
            for line in r.lines:
                per_rule[line.rule][which] += line.points
                if line.sponsor:
                    by_sponsor[line.sponsor][which] += line.sponsored
        for rule, c in per_rule.items():
            by_rule[rule].update(c)
            if c["baseline"] != c["draft"]:
                affected_by_rule[rule].add(base.row.member_pk)
        for f in new.failed:
            failures[f["rule"]][f["error"]] += 1
        if progress and events % PROGRESS_EVERY == 0:
            progress(events, max(total, events))
    if progress:
        progress(events, max(total, events))  # (events that arrived during the run are counted too)
    value = program.point_value
    ranked = sorted(by_rule.items(), key=lambda kv: (-abs(kv[1]["draft"] - kv[1]["baseline"]), kv[0]))
    return {
        "from": start.isoformat(), "to": end.isoformat(), "events": events, "members_affected": len(affected),
        "points": {**totals, "difference": totals["draft"] - totals["baseline"]},
        "liability_yuan": {k: str((Decimal(v) * value).quantize(Decimal("0.01"))) for k, v in
                           {**totals, "difference": totals["draft"] - totals["baseline"]}.items()},
        "top_rules": [{"rule": code, "baseline": c["baseline"], "draft": c["draft"],
                       "difference": c["draft"] - c["baseline"]} for code, c in ranked[:10]],
        "rules": [{"rule": code, "baseline": c["baseline"], "draft": c["draft"], "difference": c["draft"] - c["baseline"],
                   "percent": _percent(c["draft"] - c["baseline"], c["baseline"]),
                   "members_affected": len(affected_by_rule[code])} for code, c in ranked],
        "sponsored_points": {name: {"baseline": c["baseline"], "draft": c["draft"]}
                             for name, c in sorted(by_sponsor.items())},
        "rule_errors": [{"rule": rule, "error": error, "events": n} for rule, c in sorted(failures.items())
                        for error, n in c.most_common()],
    }


def _percent(change: int, base: int) -> str | None:
    """The change as a percentage of the baseline, one decimal (None when the baseline gave nothing)."""
    return str((Decimal(change) * 100 / base).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)) if base else None


def recompute(session: Session, program: Program, start: dt.datetime, end: dt.datetime, *, now: dt.datetime,
              actor: str | None, apply: bool = False) -> dict[str, Any]:
    """Re-evaluate [start, end) under the rules in force now and post each difference as a correcting
    entry (an award for points owed, a reversal of the event's own award for points overpaid).
    Without `apply`, nothing is written and the summary says what would be."""
    intake = open_intake(session, program, now, actor)
    current = intake.version_at(now)
    if current is None:
        return {"events": 0, "corrected_events": 0, "points_added": 0, "points_removed": 0, "applied": apply}
    doc = doc_of(current)
    default = intake.wallets[None].code
    summary = {"rule_version": current.version, "events": 0, "corrected_events": 0, "members_affected": 0,
               "points_added": 0, "points_removed": 0, "applied": apply}
    members: set[int] = set()
    todo = []
    for r in replay(session, program, start, end, lambda row: doc):
        summary["events"] += 1
        now_net = _current_net(r.row)
        diff = {w: p - now_net.get(w, 0) for w, p in r.net(lambda c: c or default).items()}
        diff.update({w: -p for w, p in now_net.items() if w not in diff})
        diff = {w: d for w, d in diff.items() if d}
        if diff:
            summary["corrected_events"] += 1
            members.add(r.row.member_pk)
            summary["points_added"] += sum(d for d in diff.values() if d > 0)
            summary["points_removed"] -= sum(d for d in diff.values() if d < 0)
            todo.append((r, diff))
    summary["members_affected"] = len(members)
    if apply:
        for r, diff in todo:
            _correct(intake, r, diff, current.version)
    return summary


def _current_net(row: Event) -> dict[str, int]:
    net: dict[str, int] = defaultdict(int)
    for e in row.result.get("entries", []):
        net[e["wallet"]] += e["points"] - e["reversed"]
    for c in row.result.get("corrections", []):
        net[c["wallet"]] += c["points"] - c.get("refunded", 0)
    return {w: p for w, p in net.items() if p}


def _correct(intake: Intake, r: Replayed, diff: dict[str, int], version: int) -> None:
    row, member = r.row, r.member
    lock_members(intake.session, [member.id])
    corrections = list(row.result.get("corrections", []))
    for wallet, d in sorted(diff.items()):
        code = None if wallet == intake.wallets[None].code else wallet
        sc = intake.scope(code)
        reason = f"recompute under rules v{version}"
        if d > 0:
            days = intake.program.pending_days.get(row.type)
            ensure_unrestricted(sc.session, [member.id], sc.now)
            entry = ops.award(sc, member, d, occurred_at=row.occurred_at, reference=f"event:{row.event_id}",
                              reason=reason, pending_until=row.occurred_at + dt.timedelta(days=days) if days else None)
            corrections.append({"wallet": wallet, "entry_id": entry.id, "points": d, "rule_version": version})
        else:
            for entry in _claw_back(sc, row, wallet, -d, reason):
                corrections.append({"wallet": wallet, "entry_id": entry.id, "points": -entry.points,
                                    "rule_version": version})
    row.result = {**row.result, "corrections": corrections}


def _claw_back(sc: ops.Scope, row: Event, wallet: str, n: int, reason: str) -> list[JournalEntry]:
    """Take points back by reversing the event's own awards (its correcting awards first, then the
    original), so the points leave the lots they were put in."""
    sources = [c for c in reversed(row.result.get("corrections", [])) if c["wallet"] == wallet and c["points"] > 0]
    sources += [e for e in row.result.get("entries", []) if e["wallet"] == wallet]
    done = []
    for src in sources:
        take = min(n, ops.reversible(sc, src["entry_id"]))
        if take:
            done.append(ops.reverse(sc, src["entry_id"], take, reason=reason))
            n -= take
        if n == 0:
            return done
    raise RuntimeError(f"event {row.event_id}: {n} points could not be taken back")  # net > 0 rules it out
