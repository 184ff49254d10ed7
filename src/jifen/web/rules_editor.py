"""The console's rule editor: the draft as a form or as YAML (the same draft; the YAML is what is saved),
checked as it is typed, simulated on the last weeks of real events in the background with its progress,
then published from an effective date — the same validation, simulation and versioning as
`jifen rules simulate` and `POST /v1/rules`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import yaml
from fastapi import APIRouter, Body, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

from jifen.db import run_in_transaction, utcnow
from jifen.errors import Forbidden, InvalidRequest, JifenError
from jifen.flows.replay import Progress, simulate
from jifen.programs import tiers
from jifen.programs.config import RulesConfig
from jifen.programs.models import Program
from jifen.rules.schema import LAYERS, RuleSetDoc
from jifen.rules.service import doc_of, in_force, ladder, publish
from jifen.security.service import PERMISSIONS, Principal
from jifen.web.console import JsonWriter, SignedIn, Writer, page_language, render
from jifen.web.i18n import Translator, translator
from jifen.web.rules_draft_check import Checked, check_data, check_text

router = APIRouter(prefix="/console", include_in_schema=False)
NOTICE_DAYS = 30  # seed 000: less notice than this for a rules change drew a regulator's fine
SIMULATED_DAYS = 30
CAPS = ("day", "week", "month", "lifetime")


def draft_text(doc: dict) -> str:
    """A rule set as the YAML an operator edits: defaults left out, keys in a readable order."""
    compact = RuleSetDoc.model_validate(doc, context={"stored": True}).model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(compact, allow_unicode=True, sort_keys=False, width=110)


def read_draft(session, program: Program, text: str) -> RulesConfig:
    """The draft, or InvalidRequest with its first problem (the page's checks show them all)."""
    checked = check_text(session, program, text)
    if checked.config is None:
        first = checked.problems[0]
        path = f"{first.path}: " if first.path and not first.message.startswith(first.path) else ""
        raise InvalidRequest(path + first.message, code=first.code)
    return checked.config


def _local_input(moment: dt.datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def editor_labels(t: Translator) -> dict[str, Any]:
    """What the page's script writes, in the page's language (it builds the form and the diff table)."""
    keys = ("rule", "rule_code", "rule_name", "layer", "priority", "events", "events_hint", "condition", "award",
            "award_fixed", "award_per_yuan", "award_multiplier", "award_tier", "rounding", "caps", "rule_budget",
            "budgets", "budget_name", "budget_amount", "starts_at", "ends_at", "enabled", "add_rule", "remove",
            "add_budget", "baseline", "draft", "difference", "change_pct", "members_affected", "new_rule_pct",
            "sim_progress", "sim_counting", "sim_failed", "check_ok", "checking", "yaml_broken", "points", "liability",
            "sim_events", "rule_errors", "round_down", "round_half_up", "round_up", "more_fields", "no_rules_yet",
            "stacking", "stack_multiply", "stack_add", "rules", "yaml_line", "view_yaml", "tiers", "tier_code",
            "tier_name", "threshold", "retain", "multiplier", "benefits", "add_tier", "tier_form_help")
    return {"labels": {k: t.template(k) for k in keys}, "layers": {layer: t.code("layer", layer) for layer in LAYERS},
            "caps": {c: t.code("cap", c) for c in CAPS}}


@router.get("/rules/draft")
def draft_form(request: Request, who: SignedIn):
    with request.app.state.read_sessions() as session:
        program = session.get_one(Program, who.program_id)
        live = in_force(session, program, utcnow())
        doc = doc_of(live) if live else RuleSetDoc()
        # The ladder in force is part of the draft (a version from before tiers were versioned carries none).
        ladder_now = ladder(program, doc)
        text = draft_text(doc.model_copy(update={"tiers": ladder_now}).model_dump(mode="json")) \
            if live or ladder_now else "rules: []\n"
        start = utcnow() + dt.timedelta(days=NOTICE_DAYS + 1)
        return _page(request, who, program, text=text, effective=_local_input(start, program.timezone), note="")


def _page(request: Request, who: Principal, program: Program, status: int = 200, **context):
    t = translator(page_language(request))
    context = {"report": None, "error": None} | context
    return render(request, "rules_draft.html", status=status, who=who, editor=editor_labels(t),
                  ladder=tiers.tier_config(program), notice=NOTICE_DAYS, days=SIMULATED_DAYS,
                  can_publish=who.role in PERMISSIONS["rules:write"],
                  can_simulate=who.role in PERMISSIONS["rules:simulate"], **context)


@router.post("/rules/draft")
def draft_submit(request: Request, who: Writer, text: Annotated[str, Form()],
                 effective: Annotated[str, Form()], action: Annotated[str, Form()],
                 note: Annotated[str, Form()] = ""):
    """Without the page's script: simulate in the request, or publish (the script publishes through here)."""
    now = utcnow()
    with request.app.state.read_sessions() as session:
        program = session.get_one(Program, who.program_id)
        tz = program.timezone
        context: dict[str, Any] = {"text": text, "effective": effective, "note": note}
        try:
            doc = read_draft(session, program, text)
            try:
                starts = dt.datetime.fromisoformat(effective).replace(tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
            except ValueError:
                raise InvalidRequest("effective date: give a date and time", code="invalid_config") from None
            context["notice_days"] = (starts - now).days
            if action == "publish":
                if who.role not in PERMISSIONS["rules:write"]:
                    return _page(request, who, program, status=403, **(context | {"error": "forbidden"}))
                checked = doc.doc()  # (an empty set: 422 empty_rule_set unless the draft says allow_empty)
                version = run_in_transaction(request.app.state.sessions, lambda s: publish(
                    s, s.get_one(Program, who.program_id), checked, effective_from=starts, now=now, note=note or None,
                    actor=who.actor))
                return RedirectResponse(f"/console/rules?published={version.version}" if version else "/console/rules",
                                        status_code=303)
            if who.role not in PERMISSIONS["rules:simulate"]:
                return _page(request, who, program, status=403, **(context | {"error": "forbidden"}))
            context["report"] = simulate(session, program, doc, now - dt.timedelta(days=SIMULATED_DAYS), now)
        except JifenError as exc:
            return _page(request, who, program, status=422, **(context | {"error": exc.message}))
        return _page(request, who, program, **context)


def _checked(request: Request, who: Principal, body: dict) -> Checked:
    with request.app.state.read_sessions() as session:
        program = session.get_one(Program, who.program_id)
        if isinstance(body.get("text"), str):
            return check_text(session, program, body["text"])
        if isinstance(body.get("doc"), dict):
            return check_data(session, program, body["doc"])
    raise InvalidRequest("send the draft as {\"text\": YAML} or {\"doc\": the form's data}", code="invalid_request")


@router.post("/rules/draft/check")
def draft_check(request: Request, who: JsonWriter, body: Annotated[dict, Body()]):
    """The draft's problems, each with its field path and YAML line (422 when there is one); nothing is
    saved. Also the draft in the other form: YAML for the form's data, data for the YAML. Not audited: it is
    sent after each pause in typing and changes nothing (publishing, which does, is)."""
    request.state.reads_only = True
    checked = _checked(request, who, body)
    if checked.problems:
        first = checked.problems[0]
        raise InvalidRequest(first.message, code=first.code, details=checked.answer())
    return checked.answer()


@router.post("/rules/simulations", status_code=202)
def start_simulation(request: Request, who: JsonWriter, body: Annotated[dict, Body()]):
    """Replay the last SIMULATED_DAYS of events under the draft in the background; poll the run's URL."""
    if who.role not in PERMISSIONS["rules:simulate"]:
        raise Forbidden("your role may not simulate rules", code="forbidden")
    checked = _checked(request, who, body)
    if checked.config is None:
        first = checked.problems[0]
        raise InvalidRequest(first.message, code=first.code, details=checked.answer())
    draft: RuleSetDoc = checked.config
    factory, program_id = request.app.state.read_sessions, who.program_id

    def work(progress: Progress) -> dict[str, Any]:
        now = utcnow()
        with factory() as session:
            program = session.get_one(Program, program_id)
            report = simulate(session, program, draft, now - dt.timedelta(days=SIMULATED_DAYS), now, progress)
            live = in_force(session, program, now)
            names = {r.code: r.name for r in (doc_of(live).rules if live else [])} | {r.code: r.name for r in draft.rules}
            return report | {"names": {code: name for code, name in names.items() if name}}

    run = request.app.state.simulation_runs.start(program_id, work)
    return JSONResponse(run.view() | {"url": f"/console/rules/simulations/{run.id}"}, status_code=202)


@router.get("/rules/simulations/{run_id}")
def simulation_status(request: Request, who: SignedIn, run_id: str):
    """A run's progress (events replayed of all) and, once done, its report."""
    return request.app.state.simulation_runs.get(who.program_id, run_id).view()
