"""Programme configuration, rule versions, simulation, tier evaluation."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, Field, model_validator

from jifen.apikit import Key, keyed
from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.flows import replay
from jifen.programs import tiers
from jifen.programs.config import ProgramConfig, RulesConfig
from jifen.programs.models import Program
from jifen.programs.service import apply_config
from jifen.rules.models import RuleSet
from jifen.rules.schema import RuleSetDoc
from jifen.rules.service import in_force, publish, versions
from jifen.security.deps import require
from jifen.security.service import Principal
from jifen.strict import Strict

router = APIRouter(prefix="/v1", tags=["rules"])
Reader = Annotated[Principal, Depends(require("rules:read"))]
Writer = Annotated[Principal, Depends(require("rules:write"))]
Simulator = Annotated[Principal, Depends(require("rules:simulate"))]
MAX_RANGE = dt.timedelta(days=732)


def version_view(rs: RuleSet) -> dict:
    return {"version": rs.version, "effective_from": rs.effective_from.isoformat(), "note": rs.note,
            "created_by": rs.created_by, "created_at": rs.created_at.isoformat(), "rules": rs.document}


def program_view(program: Program) -> dict:
    return {"code": program.code, "name": program.name, "point_name": program.point_name,
            "point_value": str(program.point_value), "timezone": program.timezone, "allow_debt": program.allow_debt,
            "expiry": {"months": program.expiry_months, "round": program.expiry_round},
            "pending_days": program.pending_days, "wallets": [{"code": w.code, "name": w.name} for w in program.wallets],
            "tiers": ladder.model_dump(mode="json") if (ladder := tiers.tier_config(program)) else None}


@router.get("/program", summary="The programme's settings and tier ladder")
def show_program(request: Request, who: Reader):
    with request.app.state.read_sessions() as session:
        return program_view(session.get(Program, who.program_id))


@router.put("/program", summary="Apply a whole configuration document (the YAML of `jifen program apply`)")
def put_program(body: ProgramConfig, request: Request, who: Writer, key: Key):
    def work(session):
        program = session.get(Program, who.program_id)
        if body.code != program.code:
            raise InvalidRequest(f"code: this key belongs to programme {program.code!r}", code="invalid_config")
        return apply_config(session, body, now=utcnow(), actor=who.actor)

    return keyed(request, who, key, "program.put", body, work)


@router.get("/rules", summary="Rules in force now, and announced versions that start later")
def current_rules(request: Request, who: Reader):
    with request.app.state.read_sessions() as session:
        program, now = session.get(Program, who.program_id), utcnow()
        live = in_force(session, program, now)
        upcoming = [v for v in versions(session, program) if v.effective_from > now]
        return {"in_force": version_view(live) if live else None, "upcoming": [version_view(v) for v in upcoming]}


@router.get("/rules/versions", summary="Every version of the rules, oldest first")
def rule_versions(request: Request, who: Reader):
    with request.app.state.read_sessions() as session:
        return [version_view(v) for v in versions(session, session.get(Program, who.program_id))]


@router.post("/rules", status_code=201, summary="Publish a new version of the rules from an effective date")
def publish_rules(body: RulesConfig, request: Request, who: Writer, key: Key):
    def work(session):
        now = utcnow()
        rs = publish(session, session.get(Program, who.program_id), body.doc(), effective_from=body.effective_from or now,
                     now=now, note=body.note, actor=who.actor)
        return version_view(rs) if rs else {"version": None, "unchanged": True}

    return keyed(request, who, key, "rules.publish", body, work, status=201)


class Range(Strict):
    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @model_validator(mode="after")
    def ordered(self):
        if self.to <= self.from_:
            raise ValueError("to must be after from")
        if self.to - self.from_ > MAX_RANGE:
            raise ValueError("a range of at most two years")
        return self


class SimulateIn(Range):
    rules: RuleSetDoc


@router.post("/rules/simulate", summary="Replay stored events under draft rules: points, ¥ liability, members")
def simulate(body: SimulateIn, request: Request, who: Simulator):
    with request.app.state.read_sessions() as session:
        return replay.simulate(session, session.get(Program, who.program_id), body.rules, body.from_, body.to)


class RecomputeIn(Range):
    apply: bool = False


@router.post("/rules/recompute", summary="Correct past awards under the rules in force (dry run unless apply)")
def recompute(body: RecomputeIn, request: Request, who: Writer, key: Key):
    return keyed(request, who, key, "rules.recompute", body, lambda s: replay.recompute(
        s, s.get_one(Program, who.program_id), body.from_, body.to, now=utcnow(), actor=who.actor, apply=body.apply))


@router.post("/tiers/evaluate", summary="Periodic tier evaluation: grace, retention, downgrades")
def evaluate_tiers(request: Request, who: Writer, key: Key):
    return keyed(request, who, key, "tiers.evaluate", None, lambda s: tiers.evaluate(
        s, s.get_one(Program, who.program_id), utcnow()))
