"""Tasks and missions: one-off, daily or weekly, counted in events or in ¥, with points and badges,
chained by `requires`. Every processed event advances the member's tasks (inside the event's
transaction); completing one awards its points through the ledger and grants its badge once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import cel
from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.engagement.models import Badge, Task, TaskProgress
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.events.counters import db_counters
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.outbox import emit
from jifen.programs.models import Program
from jifen.rules.engine import EventFacts, event_variables, holds, period_keys, report_failure
from jifen.rules.expressions import ConditionError, ExpressionError, check_condition

PERIODS = {"once": "lifetime", "daily": "day", "weekly": "week"}


def create_task(session: Session, program: Program, data: dict) -> Task:
    if session.scalar(select(Task.id).where(Task.program_id == program.id, Task.code == data["code"])):
        raise Conflict(f"task {data['code']!r} exists", code="task_exists")
    try:
        check_condition(data.get("condition") or "true")
    except ExpressionError as exc:
        raise InvalidRequest(f"condition: {exc}", code="invalid_condition") from None
    if data.get("requires") and not session.scalar(select(Task.id).where(Task.program_id == program.id,
                                                                         Task.code == data["requires"])):
        raise InvalidRequest(f"requires: no task {data['requires']!r}", code="unknown_task")
    task = Task(program_id=program.id, active=True, **data)
    session.add(task)
    session.flush()
    return task


def set_active(session: Session, program: Program, code: str, active: bool) -> Task:
    """A task switched on or off: events stop (or start again) counting towards it; progress is kept."""
    task = session.scalar(select(Task).where(Task.program_id == program.id, Task.code == code))
    if task is None:
        raise NotFound(f"no task {code!r}", code="task_not_found")
    task.active = active
    session.flush()
    return task


def _done(session: Session, member_pk: int, task: Task) -> bool:
    return session.scalar(select(TaskProgress.completed_at).where(
        TaskProgress.member_pk == member_pk, TaskProgress.task_id == task.id,
        TaskProgress.completed_at.is_not(None)).limit(1)) is not None


def advance(sc: ops.Scope, member: Member, event_pk: int, facts: EventFacts, who) -> list[str]:
    """Count one processed event towards the member's tasks; the codes of tasks it completed."""
    s = sc.session
    tasks = [t for t in s.scalars(select(Task).where(Task.program_id == sc.program.id, Task.active.is_(True))
                                  .order_by(Task.id)) if facts.type in t.events]
    if not tasks:
        return []
    tz = ZoneInfo(sc.program.timezone)
    by_code = {t.code: t for t in s.scalars(select(Task).where(Task.program_id == sc.program.id))}
    counters = db_counters(s, member.id, event_pk, facts.occurred_at, tz)
    context = cel.Context(variables=event_variables(facts, who, tz), functions=counters.functions())
    periods = period_keys(facts.occurred_at, tz)
    completed = []
    for task in tasks:
        if task.requires and not _done(s, member.id, by_code[task.requires]):
            continue  # a chain: the earlier task first
        try:
            if not holds(task.condition, context, counters):
                continue
        except (ExpressionError, ConditionError) as exc:  # a failing condition skips the task, not the event
            report_failure(f"task:{task.code}", str(exc))
            continue
        key = periods[PERIODS[task.period]]
        row = s.get(TaskProgress, (member.id, task.id, key)) or TaskProgress(
            member_pk=member.id, task_id=task.id, period=key, progress=Decimal(0))
        s.add(row)
        if row.completed_at is not None:
            continue
        row.progress += (facts.amount or Decimal(0)) if task.measure == "amount" else 1
        if row.progress >= task.target:
            row.completed_at = sc.now
            _reward(sc, member, task, key)
            completed.append(task.code)
    s.flush()
    return completed


def _reward(sc: ops.Scope, member: Member, task: Task, key: str) -> None:
    if task.points:
        ops.award(sc, member, task.points, reference=f"task:{task.code}:{key}", reason=f"任務完成 {task.name}")
    if task.badge and sc.session.get(Badge, (member.id, task.badge)) is None:
        sc.session.add(Badge(member_pk=member.id, code=task.badge, task_code=task.code, granted_at=sc.now))
    emit(sc.session, sc.program.id, "task.completed", {"task": task.code, "name": task.name, "points": task.points,
                                                       "badge": task.badge, "member_pk": member.id}, member.id)


def progress(session: Session, program: Program, member: Member, now: dt.datetime) -> list[dict]:
    """Each active task with the member's progress in the current period, done or not, locked by a chain."""
    keys = period_keys(now, ZoneInfo(program.timezone))
    tasks = list(session.scalars(select(Task).where(Task.program_id == program.id, Task.active.is_(True))
                                 .order_by(Task.id)))
    by_code = {t.code: t for t in tasks}
    out = []
    for t in tasks:
        row = session.get(TaskProgress, (member.id, t.id, keys[PERIODS[t.period]]))
        out.append({"code": t.code, "name": t.name, "period": t.period, "target": t.target, "measure": t.measure,
                    "progress": str(row.progress if row else 0), "done": bool(row and row.completed_at),
                    "points": t.points, "badge": t.badge,
                    "locked": bool(t.requires and not _done(session, member.id, by_code[t.requires]))})
    return out


def badges(session: Session, member: Member) -> list[dict]:
    return [{"badge": b.code, "task": b.task_code, "granted_at": b.granted_at.isoformat()}
            for b in session.scalars(select(Badge).where(Badge.member_pk == member.id).order_by(Badge.granted_at))]
