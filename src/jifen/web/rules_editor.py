"""The console's rule editor: write a draft (YAML), see what it would have cost on the last weeks of
real events, then publish it from an effective date — the same validation, simulation and versioning
as `jifen rules simulate` and `POST /v1/rules`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import yaml
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from jifen.db import run_in_transaction, utcnow
from jifen.errors import InvalidRequest, JifenError
from jifen.flows.replay import simulate
from jifen.programs.config import RulesConfig, parse
from jifen.programs.models import Program
from jifen.rules.schema import RuleSetDoc
from jifen.rules.service import in_force, publish
from jifen.security.service import PERMISSIONS
from jifen.web.console import SignedIn, Writer, render

router = APIRouter(prefix="/console", include_in_schema=False)
NOTICE_DAYS = 30  # seed 000: less notice than this for a rules change drew a regulator's fine
SIMULATED_DAYS = 30


def draft_text(doc: dict) -> str:
    """A rule set as the YAML an operator edits: defaults left out, keys in a readable order."""
    compact = RuleSetDoc.model_validate(doc, context={"stored": True}).model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(compact, allow_unicode=True, sort_keys=False, width=110)


def read_draft(text: str) -> RulesConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidRequest(f"not valid YAML{where}", code="invalid_yaml") from None
    if not isinstance(data, dict):
        raise InvalidRequest("expected a mapping with a rules list", code="invalid_config")
    return parse(RulesConfig, data)  # (a `rules:` block; `allow_empty: true` to publish an empty set)


def _local_input(moment: dt.datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


@router.get("/rules/draft")
def draft_form(request: Request, who: SignedIn):
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        live = in_force(session, program, utcnow())
        text = draft_text(live.document) if live else "rules: []\n"
        start = utcnow() + dt.timedelta(days=NOTICE_DAYS + 1)
        return render(request, "rules_draft.html", who=who, text=text, effective=_local_input(start, program.timezone),
                      note="", report=None, error=None, can_publish=who.role in PERMISSIONS["rules:write"])


@router.post("/rules/draft")
def draft_submit(request: Request, who: Writer, text: Annotated[str, Form()],
                 effective: Annotated[str, Form()], action: Annotated[str, Form()],
                 note: Annotated[str, Form()] = ""):
    now = utcnow()
    with request.app.state.read_sessions() as session:
        program = session.get_one(Program, who.program_id)
        tz = program.timezone
        context: dict[str, Any] = {"who": who, "text": text, "effective": effective, "note": note, "report": None, "error": None,
                   "can_publish": who.role in PERMISSIONS["rules:write"]}
        try:
            doc = read_draft(text)
            try:
                starts = dt.datetime.fromisoformat(effective).replace(tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
            except ValueError:
                raise InvalidRequest("effective date: give a date and time", code="invalid_config") from None
            context["notice_days"] = (starts - now).days
            if action == "publish":
                if not context["can_publish"]:
                    return render(request, "rules_draft.html", status=403, **(context | {"error": "forbidden"}))
                checked = doc.doc()  # (an empty set: 422 empty_rule_set unless the draft says allow_empty)
                run_in_transaction(request.app.state.sessions, lambda s: publish(
                    s, s.get_one(Program, who.program_id), checked, effective_from=starts, now=now, note=note or None,
                    actor=who.actor))
                return RedirectResponse("/console/rules", status_code=303)
            if who.role not in PERMISSIONS["rules:simulate"]:
                return render(request, "rules_draft.html", status=403, **(context | {"error": "forbidden"}))
            context["report"] = simulate(session, program, doc, now - dt.timedelta(days=SIMULATED_DAYS), now)
        except JifenError as exc:
            context["error"] = exc.message
            return render(request, "rules_draft.html", status=422, **context)
        return render(request, "rules_draft.html", **context)
