"""Campaigns (target, budget, co-funding, rollout, holdout, report), A/B/n experiments and bandits."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from jifen.apikit import Key, keyed
from jifen.campaigns import bandit, experiments, report, service
from jifen.campaigns.schemas import (
    KEY,
    Assignment,
    BanditIn,
    BanditView,
    CampaignChange,
    CampaignIn,
    CampaignReport,
    CampaignView,
    Choice,
    ExperimentIn,
    ExperimentResults,
    ExperimentView,
    MemberList,
    Plan,
    PlanIn,
    RewardIn,
    SimulateIn,
    Simulation,
)
from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.members.service import get_member
from jifen.openapi import errors
from jifen.programs.models import Program
from jifen.security.deps import require
from jifen.security.service import Principal

router = APIRouter(prefix="/v1", tags=["campaigns"])
Reader = Annotated[Principal, Depends(require("rules:read"))]
Writer = Annotated[Principal, Depends(require("rules:write"))]
Reports = Annotated[Principal, Depends(require("reports:read"))]
Shower = Annotated[Principal, Depends(require("events:write"))]  # the brand's systems show offers and report back
Code = Annotated[str, Path(pattern=KEY)]


def _campaign_write(request: Request, who: Principal, key: str, code: str, operation: str, body, act):
    def work(s):
        program = s.get_one(Program, who.program_id)
        c = service.get(s, who.program_id, code)
        return act(s, program, c)
    return keyed(request, who, key, f"campaigns.{operation}:{code}", body, work)


@router.post("/campaigns", status_code=201, response_model=CampaignView, summary="A campaign, as a draft")
def create_campaign(body: CampaignIn, request: Request, who: Writer, key: Key):
    return keyed(request, who, key, "campaigns.create", body, lambda s: service.view(service.create(
        s, s.get_one(Program, who.program_id), body, now=utcnow(), actor=who.actor)), status=201)


@router.get("/campaigns", response_model=list[CampaignView], summary="Every campaign, newest first")
def list_campaigns(request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return [service.view(c) for c in service.listing(s, who.program_id)]


@router.get("/campaigns/{code}", response_model=CampaignView, summary="One campaign")
def show_campaign(code: Code, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return service.view(service.get(s, who.program_id, code))


@router.post("/campaigns/{code}/launch", response_model=CampaignView,
             summary="Launch: its campaign-layer rule and budget published in a new rule version")
def launch_campaign(code: Code, request: Request, who: Writer, key: Key):
    return _campaign_write(request, who, key, code, "launch", None, lambda s, p, c: service.view(
        service.launch(s, p, c, now=utcnow(), actor=who.actor)))


@router.patch("/campaigns/{code}", response_model=CampaignView,
              summary="A rollout step (灰度), a new budget or end; a live campaign's rule is published again")
def change_campaign(code: Code, body: CampaignChange, request: Request, who: Writer, key: Key):
    return _campaign_write(request, who, key, code, "change", body, lambda s, p, c: service.view(
        service.change(s, p, c, body, now=utcnow(), actor=who.actor)))


@router.post("/campaigns/{code}/stop", response_model=CampaignView, summary="End the campaign: its rule withdrawn")
def stop_campaign(code: Code, request: Request, who: Writer, key: Key):
    return _campaign_write(request, who, key, code, "stop", None, lambda s, p, c: service.view(
        service.stop(s, p, c, now=utcnow(), actor=who.actor)))


@router.put("/campaigns/{code}/members", summary="Upload the campaign's member list (replaces an earlier one)")
def upload_members(code: Code, body: MemberList, request: Request, who: Writer, key: Key):
    return _campaign_write(request, who, key, code, "members", body, lambda s, p, c: service.upload_list(
        s, p, c, body, now=utcnow(), actor=who.actor))


@router.get("/campaigns/{code}/report", response_model=CampaignReport,
            summary="Cost (points, ¥, sponsor's share), budget, participants, incremental purchases and spend "
                    "against the holdout (95% CI), ROI")
def campaign_report(code: Code, request: Request, who: Reports):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        return report.report(s, program, service.get(s, who.program_id, code), utcnow())


@router.get("/reports/co-funding", summary="Co-funded campaign points: what each sponsor owes for a period")
def co_funding_report(request: Request, who: Reports, start: Annotated[dt.datetime, Query(alias="from")],
                      end: Annotated[dt.datetime, Query(alias="to")]):
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise InvalidRequest("give from and to with a timezone, to after from", code="invalid_period")
    with request.app.state.read_sessions() as s:
        return report.co_funding(s, s.get_one(Program, who.program_id), start, end)


@router.post("/experiments", status_code=201, response_model=ExperimentView, summary="An A/B/n experiment")
def create_experiment(body: ExperimentIn, request: Request, who: Writer, key: Key):
    return keyed(request, who, key, "experiments.create", body, lambda s: experiments.view(experiments.create(
        s, s.get_one(Program, who.program_id), body, now=utcnow(), actor=who.actor)), status=201)


@router.get("/experiments", response_model=list[ExperimentView], summary="Every experiment, newest first")
def list_experiments(request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return [experiments.view(e) for e in experiments.listing(s, who.program_id)]


@router.post("/experiments/plan", response_model=Plan,
             summary="Before it starts: members per arm for a lift, or the minimum detectable effect of a size")
def plan_experiment(body: PlanIn, who: Reader):
    return experiments.plan(body)


@router.get("/experiments/{key}/assignments/{member_id}", response_model=Assignment,
            summary="A member's arm (deterministic), 'holdout', or null outside the target")
def assignment(key: Code, member_id: str, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        e = experiments.get(s, who.program_id, key)
        m = get_member(s, s.get_one(Program, who.program_id), member_id)
        return {"experiment": e.key, "member_id": m.member_id, "arm": experiments.assign(e, m.member_id, m.tier, m.attributes)}


@router.get("/experiments/{key}/results", response_model=ExperimentResults,
            summary="Conversion, spend and redemption per arm, each against the control with 95% CI and p-value")
def experiment_results(key: Code, request: Request, who: Reports):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        return experiments.results(s, program, experiments.get(s, who.program_id, key), utcnow())


@router.post("/bandits", status_code=201, response_model=BanditView, summary="A Thompson-sampling bandit over offers")
def create_bandit(body: BanditIn, request: Request, who: Writer, key: Key):
    return keyed(request, who, key, "bandits.create", body, lambda s: bandit.summary(
        body.key, bandit.create(s, who.program_id, body.key, body.arms, utcnow())), status=201)


@router.get("/bandits/{key}", response_model=BanditView, summary="Arms, pulls, conversions, P(best), estimated regret")
def show_bandit(key: Code, request: Request, who: Reader):
    with request.app.state.read_sessions() as s:
        return bandit.summary(key, bandit.arms(s, who.program_id, key))


@router.post("/bandits/{key}/choose", response_model=Choice, summary="The offer to show now (one Thompson draw)")
def choose(key: Code, request: Request, who: Shower, key_: Key):
    return keyed(request, who, key_, f"bandits.choose:{key}", None,
                 lambda s: {"bandit": key, "arm": bandit.choose(s, who.program_id, key)})


@router.post("/bandits/{key}/rewards", summary="Whether a shown offer converted", responses=errors(409))
def reward(key: Code, body: RewardIn, request: Request, who: Shower, key_: Key):
    return keyed(request, who, key_, f"bandits.reward:{key}", body,
                 lambda s: bandit.reward(s, who.program_id, key, body.arm, body.converted))


@router.post("/bandits/simulate", response_model=Simulation,
             summary="Thompson sampling against known conversion rates: convergence and regret")
def simulate(body: SimulateIn, who: Reader):
    return bandit.simulate(body.rates, body.rounds, body.seed)
