"""An automation run, in order: whom the condition matches (automations), then for each matched member,
once per occurrence (the automation, member and occurrence claimed in `automation_reaches` in the same
transaction as the actions: a re-run, or two runs at once, never acts twice), its actions — a marketing
message through the outbox (notify delivers it where the member consented), points through the ledger (with
the automation and occurrence as the entry's reference), a coupon from the mall given as a gift (its points
awarded and redeemed for it), an invitation to an engagement task. Messages and points go batch by batch
through the set paths; an automation with a coupon goes member by member, each in a savepoint: a refused
coupon undoes that member's other actions and claim and is logged, the rest go on. A dry run shows the same,
changing nothing."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jifen.automations import service
from jifen.automations.models import Automation, AutomationAction, AutomationReach, AutomationRun
from jifen.db import by_code as db_by_code
from jifen.db import run_in_transaction, upsert
from jifen.engagement.models import Task
from jifen.errors import JifenError
from jifen.flows.pricing import price as member_price
from jifen.flows.redeem import redeem
from jifen.ledger import operations as ops
from jifen.ledger.bulk import AwardItem, award_many
from jifen.ledger.engine import lock_members
from jifen.mall import service as mall
from jifen.mall.models import Reward
from jifen.members.models import Member
from jifen.outbox import emit, emit_many
from jifen.programs.models import Program
from jifen.programs.service import get_wallet
from jifen.risk.restrictions import ensure_unrestricted, refusal, restricted
from jifen.rows import insert_rows

Facts = dict[str, Any]
Step = dict[str, Any]  # an action as planned or done for one member
Row = tuple[int, Facts, str]  # a matched member: pk, facts, occurrence
Due = tuple[int, str, str, set[int] | None]  # programme id, automation code, cause, members (event trigger)
BATCH = 200  # members acted upon per transaction
log = logging.getLogger("jifen.automations")
SHOWN = 500  # members listed in a run's answer


def planned(session: Session, program: Program, auto: Automation, facts: Facts,
            found: dict[tuple[type, str], Any] | None = None) -> list[Step]:
    """What the actions would send or give this member (texts filled in), without doing it. `found` keeps
    the rewards and tasks named, read once for all the members of a run."""
    found = {} if found is None else found

    def by_code(model: type, code: str, label: str) -> Any:
        if (model, code) not in found:
            found[(model, code)] = db_by_code(session, model, program.id, code, label)
        return found[(model, code)]

    out: list[Step] = []
    for a in auto.actions:
        if a["type"] == "message":
            out.append({"type": "message", "channels": a["channels"], "title": service.render(a["title"], facts),
                        "body": service.render(a["body"], facts)})
        elif a["type"] == "award":
            out.append({"type": "award", "points": a["points"], "reason": a["reason"]})
        elif a["type"] == "coupon":
            reward = by_code(Reward, a["reward"], "reward")
            out.append({"type": "coupon", "reward": reward.code, "name": reward.name})
        else:
            task = by_code(Task, a["task"], "task")
            out.append({"type": "task", "task": task.code, "channels": a["channels"], "title": task.name,
                        "body": f"完成任務「{task.name}」" + (f"可得{task.points}分" if task.points else "")})
    return out


def _act(sc: ops.Scope, member: Member, auto: Automation, plan: list[Step], occurrence: str) -> dict[str, Any]:
    """Carry out the plan for one member (inside the caller's savepoint)."""
    reference = f"automation:{auto.code}:{occurrence}"[:200]
    if any(step["type"] in ("award", "coupon") for step in plan):
        ensure_unrestricted(sc.session, [member.id], sc.now)
    points = 0
    done = []
    for step in plan:
        if step["type"] in ("message", "task"):
            emit(sc.session, sc.program.id, "marketing.message",
                 {"title": step["title"], "body": step["body"], "channels": step["channels"],
                  "automation": auto.code, "member_pk": member.id}, member.id)
            done.append(step)
        elif step["type"] == "award":
            entry = ops.award(sc, member, step["points"], reference=reference, reason=step["reason"])
            points += step["points"]
            done.append(step | {"entry_id": entry.id})
        else:
            reward = mall.get_reward(sc.session, sc.program, step["reward"])
            price = member_price(sc.session, sc.program, member, reward, sc.now).points  # what redeem() will hold
            ops.award(sc, member, price, reference=reference, reason=f"gift: {reward.name}")
            order = redeem(sc, member, reward, 1)
            points += price
            done.append(step | {"points": price, "redemption_id": order.id})
    return {"done": done, "points": points}


def run_due(factory: sessionmaker[Session], now: dt.datetime) -> int:
    """The jobs' tick: scheduled automations whose time has come, and event automations on the members
    whose events of their type arrived since the last tick (read by id after a mark: the intake is not
    touched). Runs done."""
    def find(s: Session) -> list[Due]:
        todo: list[Due] = []
        for program in s.scalars(select(Program).order_by(Program.id)):
            for auto in service.due(s, program, now):
                if auto.trigger == "schedule":
                    auto.next_run_at = now + service.EVERY[auto.every or "day"]
                    todo.append((program.id, auto.code, "schedule", None))
                else:
                    pks, mark = service.triggered(s, auto)
                    if pks:
                        auto.event_mark = mark
                        todo.append((program.id, auto.code, "event", pks))
        return todo

    due = run_in_transaction(factory, find)  # (the schedule moves on first: a failing run is not retried each tick)
    for program_id, code, cause, pks in due:
        try:
            run(factory, program_id, code, now, cause=cause, actor="jobs", pks=pks)
        except Exception:  # one automation failing (its task deleted since, the database busy …) stops no other
            log.exception("automation %s of programme %s failed", code, program_id)
    return len(due)


def run(factory: sessionmaker[Session], program_id: int, code: str, now: dt.datetime, *, cause: str = "manual",
        actor: str = "system", dry_run: bool = False, pks: set[int] | None = None) -> dict[str, Any]:
    """Run the automation now (on the members of `pks` only, for an event trigger); the run's report."""

    def match(s: Session) -> tuple[int, int, list[Row], list[str], dict[int, list[Step]]]:
        program = s.get_one(Program, program_id)
        auto = service.get(s, program_id, code)
        evaluated, found, errors = service.matches(s, program, auto, now, pks)
        tz = ZoneInfo(program.timezone)
        rows: list[Row] = [(pk, facts, service.occurrence(auto, facts, now, tz)) for pk, facts in found]
        targets: dict[tuple[type, str], Any] = {}
        plans = {pk: planned(s, program, auto, facts, targets) for pk, facts, _ in rows}
        return auto.id, evaluated, rows, errors, plans

    auto_id, evaluated, rows, errors, plans = run_in_transaction(factory, match)
    report: dict[str, Any] = {"automation": code, "dry_run": dry_run, "cause": cause, "started_at": now.isoformat(),
                              "evaluated": evaluated, "matched": len(rows), "acted": 0, "repeats": 0, "failed": 0,
                              "errors": errors, "members": []}
    if dry_run:
        with factory() as s:
            taken = _taken(s, auto_id, rows)
        report["run_id"] = None
        report["members"] = [{"member_id": facts["id"], "occurrence": occ, "facts": facts, "actions": plans[pk],
                              "status": "repeat" if pk in taken else "would"} for pk, facts, occ in rows[:SHOWN]]
        report["repeats"] = len(taken)
        return report

    def start(s: Session) -> int:
        r = AutomationRun(program_id=program_id, automation_id=auto_id, cause=cause, actor=actor[:200],
                          started_at=now, evaluated=evaluated, matched=len(rows), errors=errors)
        s.add(r)
        s.flush()
        return r.id

    run_id = report["run_id"] = run_in_transaction(factory, start)
    for i in range(0, len(rows), BATCH):
        part = rows[i:i + BATCH]

        def batch(s: Session, part: list[Row] = part) -> list[Step]:
            return _batch(s, program_id, auto_id, run_id, part, plans, now)

        for entry in run_in_transaction(factory, batch):
            report[{"done": "acted", "repeat": "repeats", "failed": "failed"}[entry["status"]]] += 1
            if len(report["members"]) < SHOWN:
                report["members"].append(entry)

    def finish(s: Session) -> None:
        r = s.get_one(AutomationRun, run_id)
        r.acted, r.repeats, r.failed, r.finished_at = report["acted"], report["repeats"], report["failed"], now
        s.get_one(Automation, auto_id).last_run_at = now

    run_in_transaction(factory, finish)
    return report


def _taken(s: Session, auto_id: int, rows: list[Row]) -> set[int]:
    """Members already reached for their occurrence."""
    wanted = {(pk, occ) for pk, _, occ in rows}
    found = s.execute(select(AutomationReach.member_pk, AutomationReach.occurrence).where(
        AutomationReach.automation_id == auto_id, AutomationReach.member_pk.in_([pk for pk, _ in wanted] or [0])))
    return {pk for pk, occ in found if (pk, occ) in wanted}


def _claim(s: Session, auto_id: int, run_id: int, rows: list[Row], now: dt.datetime) -> set[int]:
    """Claim the members' occurrences, in the caller's transaction (one statement): those claimed now. One
    reached before is not; on PostgreSQL a concurrent run's claim makes this wait for it to commit, then not."""
    if not rows:
        return set()
    claim = upsert(s, AutomationReach).values([
        {"automation_id": auto_id, "member_pk": pk, "occurrence": occ, "run_id": run_id, "reached_at": now}
        for pk, _, occ in rows]).on_conflict_do_nothing().returning(AutomationReach.member_pk)
    return set(s.execute(claim).scalars())


def _batch(s: Session, program_id: int, auto_id: int, run_id: int, part: list[Row], plans: dict[int, list[Step]],
           now: dt.datetime) -> list[Step]:
    program = s.get_one(Program, program_id)
    auto = s.get_one(Automation, auto_id)
    sc = ops.Scope(s, program, get_wallet(s, program, None), now, actor=f"automation:{auto.code}")
    members = {m.id: m for m in s.scalars(select(Member).where(Member.id.in_([pk for pk, _, _ in part])))}
    if any(a["type"] == "coupon" for a in auto.actions):
        logged = [_one(sc, auto, run_id, row, members[row[0]], plans[row[0]]) for row in part]
    else:
        logged = _many(sc, auto, run_id, part, members, plans)
    insert_rows(s, AutomationAction, [
        {"run_id": run_id, "member_pk": pk, "occurrence": occ, "status": e["status"], "done": e["actions"],
         "error": e["error"], "created_at": now, "points": e.pop("points")} for (pk, _, occ), e in zip(part, logged,
                                                                                                      strict=True)])
    return logged


def _entry(facts: Facts, occurrence: str, status: str, actions: list[Step] | None = None, points: int = 0,
           error: str | None = None) -> Step:
    return {"member_id": facts["id"], "occurrence": occurrence, "status": status, "actions": actions or [],
            "points": points, "error": error}


def _one(sc: ops.Scope, auto: Automation, run_id: int, row: Row, member: Member, plan: list[Step]) -> Step:
    """A member whose actions may be refused (a coupon: stock, risk control), in a savepoint of its own: a
    refusal undoes the member's other actions and the claim, so the next run tries again."""
    pk, facts, occ = row
    try:
        with sc.session.begin_nested():
            if pk not in _claim(sc.session, auto.id, run_id, [row], sc.now):
                return _entry(facts, occ, "repeat")
            result = _act(sc, member, auto, plan, occ)
        return _entry(facts, occ, "done", result["done"], result["points"])
    except JifenError as exc:
        return _entry(facts, occ, "failed", error=exc.message[:500])


def _many(sc: ops.Scope, auto: Automation, run_id: int, part: list[Row], members: dict[int, Member],
          plans: dict[int, list[Step]]) -> list[Step]:
    """Messages and awards for a whole batch at once: the claims in one statement, the messages in one, the
    awards through the ledger's set path (ledger/bulk.py: what operations.award writes, for many)."""
    s = sc.session
    # Blacklisted or frozen members earn nothing (risk control's decision, carried out here as flows/points.py does).
    earns = any(a["type"] == "award" for a in auto.actions)
    blocked = set(restricted(s, [pk for pk, _, _ in part], sc.now)) if earns else set()
    claimed = _claim(s, auto.id, run_id, [row for row in part if row[0] not in blocked], sc.now)
    lock_members(s, claimed)
    reference = {pk: f"automation:{auto.code}:{occ}"[:200] for pk, _, occ in part}
    emit_many(s, [(sc.program.id, "marketing.message", {
        "title": step["title"], "body": step["body"], "channels": step["channels"], "automation": auto.code,
        "member_pk": pk}, pk) for pk, _, _ in part if pk in claimed for step in plans[pk]
        if step["type"] in ("message", "task")])
    awards = [(pk, n) for pk, _, _ in part if pk in claimed for n, step in enumerate(plans[pk])
              if step["type"] == "award"]
    entries = award_many(sc, [AwardItem(members[pk], plans[pk][n]["points"], sc.now, reference=reference[pk],
                                        reason=plans[pk][n]["reason"]) for pk, n in awards])
    entry_of = {key: e.id for key, e in zip(awards, entries, strict=True)}
    out = []
    for pk, facts, occ in part:
        if pk in blocked:
            out.append(_entry(facts, occ, "failed", error=refusal(facts["id"]).message))
            continue
        if pk not in claimed:
            out.append(_entry(facts, occ, "repeat"))
            continue
        done = [step | ({"entry_id": entry_of[(pk, n)]} if (pk, n) in entry_of else {})
                for n, step in enumerate(plans[pk])]
        out.append(_entry(facts, occ, "done", done, sum(step.get("points", 0) for step in done
                                                          if step["type"] == "award")))
    return out
