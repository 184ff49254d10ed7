"""Automation definitions: saving them (a condition is bounded and compiled by the rules' CEL path and tried
on sample facts before it is kept), when they are due, and whom their condition matches."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import cel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.automations.facts import SAMPLE, member_facts
from jifen.automations.models import Automation
from jifen.automations.schemas import AutomationIn
from jifen.db import by_code
from jifen.engagement.models import Task
from jifen.errors import InvalidRequest
from jifen.events.models import Event
from jifen.mall.models import Reward
from jifen.programs.models import Program
from jifen.rules.engine import period_keys
from jifen.rules.expressions import COUNTERS, ConditionError, ExpressionError, compile_condition, evaluate

EVERY = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1), "week": dt.timedelta(days=7)}
MAX_ERRORS = 5  # condition errors kept per run


def check_condition(source: str) -> cel.Program:
    """A condition over `member` (and `tier`): bounded and compiled as rules' are, without the event or
    the event counters (an automation runs on members, not on an event), tried once on sample facts."""
    try:
        program = compile_condition(source)
        if "event" in set(program.variables()):
            raise ExpressionError("an automation sees member and tier, not event")
        counters = sorted(set(program.functions()) & COUNTERS)
        if counters:
            raise ExpressionError(f"{counters[0]}() counts an event's history: use member facts "
                                  "(days_since_purchase, purchases …) instead")
        evaluate(program, _context(SAMPLE))
    except ExpressionError as exc:
        raise InvalidRequest(f"condition: {exc}", code="invalid_condition") from None
    except ConditionError as exc:
        raise InvalidRequest(f"condition: fails on sample facts: {exc}", code="invalid_condition") from None
    return program


def _context(facts: dict) -> cel.Context:
    return cel.Context(variables={"member": facts, "tier": facts["tier"]})


def save(session: Session, program: Program, body: AutomationIn, now: dt.datetime) -> Automation:
    """Create the automation, or replace the definition of the one with this code."""
    if body.trigger == "schedule" and (body.every is None or body.event_type is not None):
        raise InvalidRequest("a schedule trigger needs every (hour, day or week) and no event_type",
                             code="invalid_trigger")
    if body.trigger == "event" and (body.event_type is None or body.every is not None):
        raise InvalidRequest("an event trigger needs event_type and no every", code="invalid_trigger")
    check_condition(body.condition)
    for action in body.actions:  # (a code the body names is a 422, not a 404: the path was found)
        if action.type == "coupon":
            reward = session.scalar(select(Reward).where(Reward.program_id == program.id, Reward.code == action.reward))
            if reward is None or reward.kind != "coupon" or reward.honeypot:
                raise InvalidRequest(f"no coupon reward {action.reward!r}", code="unknown_coupon")
        elif action.type == "task" and session.scalar(
                select(Task.id).where(Task.program_id == program.id, Task.code == action.task)) is None:
            raise InvalidRequest(f"no task {action.task!r}", code="unknown_task")
    found = session.scalar(select(Automation).where(Automation.program_id == program.id, Automation.code == body.code))
    auto = found or Automation(program_id=program.id, code=body.code, created_at=now)
    if found is None or found.trigger != body.trigger or found.event_type != body.event_type:
        # An event trigger starts from the events to come, not the whole history.
        auto.event_mark = session.scalar(select(func.coalesce(func.max(Event.id), 0)).where(
            Event.program_id == program.id)) or 0
        auto.last_run_at = None
    auto.name, auto.trigger, auto.every, auto.event_type = body.name, body.trigger, body.every, body.event_type
    auto.condition, auto.repeat, auto.active = body.condition, body.repeat, body.active
    auto.actions = [a.model_dump(mode="json") for a in body.actions]
    auto.next_run_at = now if body.trigger == "schedule" else None
    auto.updated_at = now
    session.add(auto)
    session.flush()
    return auto


def get(session: Session, program_id: int, code: str) -> Automation:
    return by_code(session, Automation, program_id, code, "automation")


def view(a: Automation) -> dict:
    return {"code": a.code, "name": a.name, "trigger": a.trigger, "every": a.every, "event_type": a.event_type,
            "condition": a.condition, "actions": a.actions, "repeat": a.repeat, "active": a.active,
            "last_run_at": a.last_run_at.isoformat() if a.last_run_at else None,
            "next_run_at": a.next_run_at.isoformat() if a.next_run_at else None}


def occurrence(auto: Automation, facts: dict, now: dt.datetime, tz: ZoneInfo) -> str:
    """What 'once' means for this member: their current lapse (the last purchase day), ever, or a period."""
    if auto.repeat == "lapse":
        return f"lapse:{facts['last_purchase'] or 'never'}"
    if auto.repeat == "once":
        return "once"
    return period_keys(now, tz)[auto.repeat]


def matches(session: Session, program: Program, auto: Automation, now: dt.datetime,
            pks: set[int] | None = None) -> tuple[int, list[tuple[int, dict]], list[str]]:
    """(members evaluated, [(member pk, facts)] the condition holds for, the first few condition errors)."""
    condition = check_condition(auto.condition)
    facts = member_facts(session, program, now, pks)
    found: list[tuple[int, dict]] = []
    errors: list[str] = []
    for pk in sorted(facts):
        try:
            if evaluate(condition, _context(facts[pk])):
                found.append((pk, facts[pk]))
        except ConditionError as exc:
            if len(errors) < MAX_ERRORS:
                errors.append(f"{facts[pk]['id']}: {exc}")
    return len(facts), found, errors


def render(text: str, facts: dict) -> str:
    """{name} replaced by the member's fact of that name (an unknown name stays as written)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(facts.get(m[1], m[0])), text)


def due(session: Session, program: Program, now: dt.datetime) -> list[Automation]:
    """Active automations whose schedule has come, and every active event automation (polled)."""
    return list(session.scalars(select(Automation).where(
        Automation.program_id == program.id, Automation.active.is_(True),
        (Automation.trigger == "event") | (Automation.next_run_at <= now)).order_by(Automation.id)
        .with_for_update(skip_locked=True)))  # (two workers: one takes each automation)


def triggered(session: Session, auto: Automation) -> tuple[set[int], int]:
    """Members with events of the automation's type after its mark, and the new mark (an id range scan)."""
    rows = session.execute(select(Event.id, Event.member_pk).where(
        Event.program_id == auto.program_id, Event.id > auto.event_mark, Event.type == auto.event_type)).all()
    return {r.member_pk for r in rows}, max((r.id for r in rows), default=auto.event_mark)
