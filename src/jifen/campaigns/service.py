"""Campaigns: created as drafts, launched by publishing a campaign-layer rule into a new version of the
rules (so its points go through the event intake, its budget is a rule budget — the row the intake locks —
and its supplier's share is the rule's sponsor), rolled out step by step, and ended by withdrawing the rule.

Each change is a new rule version effective now: an event keeps the campaign terms in force when it
occurred (a late event from before a rollout step is priced under the earlier share).

A campaign of double-value redemption days gives no points: it publishes no rule, and the points mall reads
it as it prices a redemption (campaigns/redemption_days.py); its status, window and rollout are this row's."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.campaigns.models import Campaign
from jifen.campaigns.schemas import CampaignChange, CampaignIn, Effect, MemberList, Target
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.members import segments
from jifen.members.models import Member
from jifen.programs.models import Program
from jifen.rules import budgets
from jifen.rules.audience import Audience
from jifen.rules.schema import Rule, RuleSetDoc, Sponsor
from jifen.rules.service import doc_of, in_force, publish


def rule_code(c: Campaign) -> str:
    return budgets.of_campaign(c.code)


def list_name(c: Campaign) -> str:
    return f"list:{c.code}"


def audience(c: Campaign) -> Audience:
    return Audience.model_validate(c.audience)


def effect(c: Campaign) -> Effect:
    return Effect.model_validate(c.effect)


def _stored(e: Effect) -> dict:
    """The effect as given (a double-value one holds only its days: events and the like are not its own)."""
    if e.double_value is not None:
        return {"double_value": e.double_value.model_dump(mode="json")}
    return e.model_dump(mode="json", exclude_none=True)


def create(session: Session, program: Program, body: CampaignIn, *, now: dt.datetime, actor: str | None) -> Campaign:
    if session.scalar(select(Campaign.id).where(Campaign.program_id == program.id, Campaign.code == body.code)):
        raise Conflict(f"campaign {body.code!r} exists", code="campaign_exists")
    aud = Audience(key=f"campaign:{body.code}", **body.target.model_dump(), share=body.rollout, holdout=body.holdout)
    c = Campaign(program_id=program.id, code=body.code, name=body.name, status="draft",
                 audience=aud.model_dump(mode="json"), effect=_stored(body.effect),
                 starts_at=body.starts_at, ends_at=body.ends_at, budget=body.budget,
                 sponsor=body.sponsor.name if body.sponsor else None,
                 sponsor_share=body.sponsor.share if body.sponsor else None, created_by=actor, created_at=now,
                 updated_at=now)
    session.add(c)
    session.flush()
    return c


def get(session: Session, program_id: int, code: str) -> Campaign:
    found = session.scalar(select(Campaign).where(Campaign.program_id == program_id, Campaign.code == code))
    if found is None:
        raise NotFound(f"no campaign {code!r}", code="unknown_campaign")
    return found


def listing(session: Session, program_id: int) -> list[Campaign]:
    return list(session.scalars(select(Campaign).where(Campaign.program_id == program_id).order_by(Campaign.id.desc())))


def view(c: Campaign) -> dict:
    aud = audience(c)
    return {"code": c.code, "name": c.name, "status": c.status, "rule": rule_code(c),
            "target": Target(tiers=aud.tiers, segments=aud.segments, tags=aud.tags, lists=aud.lists).model_dump(),
            "rollout": str(aud.share), "holdout": str(aud.holdout), "starts_at": c.starts_at.isoformat(),
            "ends_at": c.ends_at.isoformat(), "effect": c.effect, "budget": c.budget,
            "sponsor": {"name": c.sponsor, "share": str(c.sponsor_share)} if c.sponsor else None}


def rule(c: Campaign) -> Rule:
    e = effect(c)
    return Rule(code=rule_code(c), name=c.name, layer="campaign", events=e.events, award=e.award(),
                categories=e.categories, channels=e.channels, starts_at=c.starts_at, ends_at=c.ends_at,
                budget=rule_code(c), audience=audience(c),
                sponsor=Sponsor(name=c.sponsor, share=c.sponsor_share) if c.sponsor and c.sponsor_share else None)


def _republish(session: Session, program: Program, c: Campaign, now: dt.datetime, actor: str | None, *,
               withdraw: bool = False) -> None:
    """The rules in force now, with this campaign's rule (and budget) put in, replaced or taken out."""
    if not effect(c).earns:
        return  # (no rule: the mall reads the campaign itself)
    current = in_force(session, program, now)
    doc = doc_of(current) if current else RuleSetDoc()
    rules = [r for r in doc.rules if r.code != rule_code(c)]
    budgets = {k: v for k, v in doc.budgets.items() if k != rule_code(c)}
    if not withdraw:
        rules.append(rule(c))
        budgets[rule_code(c)] = c.budget
    new = RuleSetDoc(multipliers=doc.multipliers, layer_order=doc.layer_order, budgets=budgets, rules=rules)
    # (the note is shown to operators and, once announced, to members: words, not codes)
    verb = "结束" if withdraw else "上线" if c.status == "draft" else "调整"
    publish(session, program, new, effective_from=now, now=now, note=f"营销活动「{c.name}」{verb}", actor=actor)


def launch(session: Session, program: Program, c: Campaign, *, now: dt.datetime, actor: str | None) -> Campaign:
    if c.status != "draft":
        raise Conflict(f"campaign {c.code!r} is {c.status}, not a draft", code="campaign_not_draft")
    if c.ends_at <= now:
        raise InvalidRequest(f"campaign {c.code!r} ended at {c.ends_at.isoformat()}", code="campaign_over")
    _republish(session, program, c, now, actor)
    c.status, c.updated_at = "live", now
    return c


def change(session: Session, program: Program, c: Campaign, body: CampaignChange, *, now: dt.datetime,
           actor: str | None) -> Campaign:
    """A rollout step, a new budget or end; a live campaign's rule is published again with it."""
    if c.status == "ended":
        raise Conflict(f"campaign {c.code!r} has ended", code="campaign_ended")
    if body.ends_at is not None and body.ends_at <= c.starts_at:
        raise InvalidRequest("ends_at must be after the campaign starts", code="invalid_campaign")
    if body.rollout is not None:
        aud = audience(c)
        if body.rollout == 0 and aud.holdout == 0:
            raise InvalidRequest("rollout 0 without a holdout leaves nobody in the campaign", code="invalid_campaign")
        c.audience = aud.model_copy(update={"share": body.rollout}).model_dump(mode="json")
    c.budget = body.budget if body.budget is not None else c.budget
    c.ends_at = body.ends_at or c.ends_at
    if c.status == "live":
        _republish(session, program, c, now, actor)
    c.updated_at = now
    return c


def stop(session: Session, program: Program, c: Campaign, *, now: dt.datetime, actor: str | None) -> Campaign:
    if c.status == "ended":
        raise Conflict(f"campaign {c.code!r} has ended", code="campaign_ended")
    if c.status == "live":
        _republish(session, program, c, now, actor, withdraw=True)
        c.ends_at = min(c.ends_at, now)
    c.status, c.updated_at = "ended", now
    return c


def upload_list(session: Session, program: Program, c: Campaign, body: MemberList, *, now: dt.datetime,
                actor: str | None) -> dict:
    """The campaign targets the uploaded members (in place of an earlier upload); unknown ids are refused
    (nothing stored) so a typo is not silently dropped."""
    ids = sorted(set(body.member_ids))
    pks = dict(session.execute(select(Member.member_id, Member.id).where(Member.program_id == program.id,
                                                                         Member.member_id.in_(ids))).all())
    missing = [m for m in ids if m not in pks]
    if missing:
        raise InvalidRequest(f"{len(missing)} unknown member id(s), first {missing[0]!r}", code="unknown_members",
                             details={"unknown": missing[:20]})
    name = list_name(c)
    earlier = [pk for pk, attrs in session.execute(select(Member.id, Member.attributes).where(
        Member.program_id == program.id)) if name in ((attrs or {}).get("segments") or [])]
    segments.drop(session, [pk for pk in earlier if pk not in set(pks.values())], name)
    segments.store(session, {pk: name for pk in pks.values()}, {name})
    aud = audience(c)
    if name not in aud.lists:
        c.audience = aud.model_copy(update={"lists": [*aud.lists, name]}).model_dump(mode="json")
        if c.status == "live":
            _republish(session, program, c, now, actor)
    c.updated_at = now
    return {"campaign": c.code, "list": name, "members": len(pks)}
