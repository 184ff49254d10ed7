"""The console's audit log (audit:read): who changed what, newest first, filtered by actor, kind of action,
member and date range. Each filter is a column of an index that ends in `seq` (security/audit.py), and a
page is `seq < before` of the page above it, so a page costs the same deep in the log as at its top."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.errors import InvalidRequest
from jifen.programs.models import Program
from jifen.security.audit import AuditEntry
from jifen.security.audit_keys import ACTIONS
from jifen.security.models import ApiKey
from jifen.security.service import Principal
from jifen.security.users import ConsoleUser
from jifen.web.console import allowed, render
from jifen.web.forms import whole

router = APIRouter(prefix="/console", include_in_schema=False)
Auditor = Annotated[Principal, allowed("audit:read")]
PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    actor: str = ""
    action: str = ""
    member: str = ""
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive: the whole day
    before: int | None = None  # the seq the page starts below

    @classmethod
    def parse(cls, params) -> Filters:
        action = (params.get("action") or "").strip()
        if action and action not in ACTIONS:
            raise InvalidRequest(f"unknown kind of action {action!r}", code="invalid_filter")
        start, end = (_day(params.get(k), label) for k, label in (("from", "from"), ("to", "to")))
        if start and end and start > end:
            raise InvalidRequest("the start date is after the end date", code="invalid_range")
        before = params.get("before")
        return cls((params.get("actor") or "").strip()[:200], action, (params.get("member") or "").strip()[:64],
                   start, end, whole(before, "before", minimum=1) if before else None)

    def query(self, before: int | None = None) -> dict[str, str]:
        shown = {"actor": self.actor, "action": self.action, "member": self.member,
                 "from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else "",
                 "before": str(before) if before else ""}
        return {k: v for k, v in shown.items() if v}


def _day(text: str | None, label: str) -> dt.date | None:
    if not text or not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"{label} must be a date like 2026-12-03, not {text.strip()!r}",
                             code="invalid_date") from None


def lines(session: Session, program: Program, f: Filters) -> tuple[list[AuditEntry], bool]:
    """A page of the programme's lines matching the filters, newest first, and whether older ones follow."""
    tz = ZoneInfo(program.timezone)
    q = select(AuditEntry).where(AuditEntry.program_id == program.id)
    if f.actor:
        q = q.where(AuditEntry.actor == f.actor)
    if f.action:
        q = q.where(AuditEntry.action == f.action)
    if f.member:
        q = q.where(AuditEntry.member_id == f.member)
    if f.start:  # days in the programme's timezone, as the page shows times
        q = q.where(AuditEntry.at >= dt.datetime.combine(f.start, dt.time(), tz))
    if f.end:
        q = q.where(AuditEntry.at < dt.datetime.combine(f.end + dt.timedelta(days=1), dt.time(), tz))
    if f.before:
        q = q.where(AuditEntry.seq < f.before)
    found = list(session.scalars(q.order_by(AuditEntry.seq.desc()).limit(PAGE_SIZE + 1)))
    return found[:PAGE_SIZE], len(found) > PAGE_SIZE


def actors(session: Session, program_id: int) -> list[tuple[str, str, str]]:
    """(actor as the log writes it, kind, name) of the programme's console users and API keys."""
    users = session.scalars(select(ConsoleUser).where(ConsoleUser.program_id == program_id)
                            .order_by(ConsoleUser.username))
    keys = session.scalars(select(ApiKey).where(ApiKey.program_id == program_id).order_by(ApiKey.id))
    return ([(u.principal().actor, "user", u.username) for u in users]
            + [(f"apikey:{k.id}:{k.name}", "key", f"{k.name} #{k.id}") for k in keys])


@router.get("/audit")
def audit_log(request: Request, who: Auditor):
    with request.app.state.read_sessions() as s:
        program = s.get_one(Program, who.program_id)
        try:
            f, error = Filters.parse(request.query_params), None
        except InvalidRequest as exc:
            f, error = Filters(), exc.message
        rows, more = lines(s, program, f)
        return render(request, "audit.html", status=422 if error else 200, who=who, rows=rows, more=more, f=f,
                      error=error, actions=ACTIONS, actors=actors(s, program.id), tz=program.timezone)
