"""The console's campaigns page (營銷活動): each campaign with its report (cost, budget, participants,
incremental purchases and spend against the holdout, ROI), each experiment with its results, each bandit's
arms. Read through the same functions as the API. For roles with rules:write (as the API): a campaign
defined — its effect points (multiplier, bonus, per ¥) or double-value redemption days — through the API's
CampaignIn (the same checks), and launched; a refusal is shown on the page with nothing changed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from jifen.campaigns import bandit, experiments, report, service
from jifen.campaigns.schemas import CampaignIn
from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.programs.models import Program
from jifen.security.service import Principal
from jifen.web.console import allowed, render
from jifen.web.forms import done_of, submit, whole

router = APIRouter(prefix="/console", include_in_schema=False)
Reader = Annotated[Principal, allowed("reports:read")]
Writer = Annotated[Principal, allowed("rules:write", write=True)]
Text = Annotated[str, Form()]
EFFECTS = ("multiplier", "bonus", "per_yuan", "double_value")
DONE = ("campaign_created", "campaign_launched")


def _page(request: Request, who: Principal, status: int = 200, error: str | None = None, form: dict | None = None):
    with request.app.state.read_sessions() as s:
        program, now = s.get_one(Program, who.program_id), utcnow()
        reports = [report.report(s, program, c, now) for c in service.listing(s, program.id)]
        results = [experiments.results(s, program, e, now) for e in experiments.listing(s, program.id)]
        bandits = [bandit.summary(k, bandit.arms(s, program.id, k)) for k in bandit.keys(s, program.id)]
        return render(request, "campaigns.html", status=status, who=who, tz=program.timezone, reports=reports,
                      results=results, bandits=bandits, effects=EFFECTS, writes=who.may("rules:write"),
                      error=error, form=form or {}, done=done_of(request, DONE))


@router.get("/campaigns")
def campaigns(request: Request, who: Reader):
    return _page(request, who)


def _days(text: str) -> list[int]:
    """'6, 7' → [6, 7] (the schema checks the range)."""
    try:
        return [int(d) for d in text.replace("，", ",").split(",") if d.strip()]
    except ValueError:
        raise InvalidRequest(f"days are whole numbers separated by commas, not {text!r}", code="invalid_campaign") from None


def _moment(text: str, tz: str) -> dt.datetime | str:
    """A datetime-local field, read in the programme's timezone (left as typed for the schema to refuse)."""
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))
    except ValueError:
        return text


def campaign_body(form: dict, tz: str) -> CampaignIn:
    """The form as the API's CampaignIn would take it: the same checks, the same messages."""
    kind, value = form["effect"], form["value"].strip()
    if kind not in EFFECTS:
        raise InvalidRequest(f"unknown effect {kind!r}", code="invalid_campaign")
    if kind == "double_value":
        effect: dict = {"double_value": {"weekdays": _days(form["weekdays"]), "days_of_month": _days(form["days"]),
                                         **({"factor": value} if value else {})}}
    else:
        effect = {kind: whole(value, kind) if kind == "bonus" else value or None}
    body = {"code": form["code"].strip(), "name": form["name"].strip(), "effect": effect,
            "starts_at": _moment(form["starts_at"], tz), "ends_at": _moment(form["ends_at"], tz),
            "budget": whole(form["budget"], "budget"),
            "rollout": form["rollout"].strip() or "1", "holdout": form["holdout"].strip() or "0"}
    if form["sponsor"].strip():
        body["sponsor"] = {"name": form["sponsor"].strip(), "share": form["share"].strip() or None}
    try:
        return CampaignIn.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest("; ".join(f"{'.'.join(map(str, e['loc'])) or 'campaign'}: {e['msg']}"
                                       for e in exc.errors()), code="invalid_campaign") from None


@router.post("/campaigns")
def create_campaign(request: Request, who: Writer, code: Text = "", name: Text = "", effect: Text = "",
                    value: Text = "", weekdays: Text = "", days: Text = "", starts_at: Text = "", ends_at: Text = "",
                    budget: Text = "", sponsor: Text = "", share: Text = "", rollout: Text = "", holdout: Text = "",
                    launch: Text = "", once: Text = ""):
    form = {"code": code, "name": name, "effect": effect, "value": value, "weekdays": weekdays, "days": days,
            "starts_at": starts_at, "ends_at": ends_at, "budget": budget, "sponsor": sponsor, "share": share,
            "rollout": rollout, "holdout": holdout, "launch": launch}

    def work(sc):
        c = service.create(sc.session, sc.program, campaign_body(form, sc.program.timezone), now=sc.now, actor=sc.actor)
        return service.launch(sc.session, sc.program, c, now=sc.now, actor=sc.actor) if launch == "on" else c

    error = submit(request, who, once, "campaigns.create", form, work)
    if error is None:
        return RedirectResponse(f"/console/campaigns?done={'campaign_launched' if launch == 'on' else 'campaign_created'}",
                                status_code=303)
    return _page(request, who, status=422, error=error, form=form)
