"""The operator console: server-rendered pages over the same services as the API.

Console users sign in with a username and password (web/signin.py); the session cookie is checked by
`signed_in` on every page, and every POST goes through `form_writer` (the session's CSRF token). Pages a
role may not use answer 403 through `Refused`.
"""

from __future__ import annotations

import datetime as dt
import hmac
from pathlib import Path
from typing import Annotated, cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Cookie, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup, escape
from sqlalchemy import select

from jifen.analytics.overview import points_by_rule
from jifen.approvals import service as approvals
from jifen.db import run_in_transaction, utcnow
from jifen.errors import Forbidden, InvalidRequest, NotFound
from jifen.events.models import Event
from jifen.events.store import stored_view
from jifen.ledger.models import JournalEntry, Posting
from jifen.ledger.views import balance_view, entry_views
from jifen.members.models import Member
from jifen.members.service import find_by_phone, get_member
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.rules.service import changes, in_force, versions
from jifen.security import sessions
from jifen.security.pii import mask
from jifen.security.service import PERMISSIONS, Principal
from jifen.web import member_list
from jifen.web.forms import done_of, once_field
from jifen.web.i18n import DEFAULT, LANGUAGES, NAMES, SHORT_NAMES, from_accept_language, language, translator
from jifen.web.member_facts import member_lots, member_restrictions

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)
COOKIE = "jifen_console"


LANG_COOKIE = "jifen_lang"


def page_language(request: Request) -> str:
    """?lang= (a switch, remembered in a cookie), else the remembered choice, else the browser's, else 简体中文."""
    return (language(request.query_params.get("lang")) or language(request.cookies.get(LANG_COOKIE))
            or from_accept_language(request.headers.get("accept-language")) or DEFAULT)


def lang_url(request: Request, lang: str) -> str:
    """This page in another language (its other query parameters kept)."""
    url = request.url.include_query_params(lang=lang)
    return f"{url.path}?{url.query}"


def local_time(iso: str | None, timezone: str = "Asia/Shanghai") -> str:
    """An ISO UTC timestamp as the programme's wall-clock time, to the minute."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local"] = local_time


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    lang = page_language(request)
    response = templates.TemplateResponse(request, name, {"t": translator(lang), "lang": lang, **context},
                                          status_code=status)
    if language(request.query_params.get("lang")):  # one choice for the console and the member centre
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", path="/", max_age=365 * 86400)
        response.delete_cookie(LANG_COOKIE, path="/console")  # (where earlier versions kept it)
    return response


@pass_context
def csrf_field(context) -> Markup:
    """{{ csrf_field() }}: the hidden field every console form carries (the session's CSRF token, or
    the sign-in page's own token)."""
    token = getattr(context["request"].state, "csrf", "")
    return Markup(f'<input type="hidden" name="csrf" value="{escape(token)}">')


templates.env.globals["csrf_field"] = csrf_field
templates.env.globals.update(lang_url=lang_url, LANGUAGES=LANGUAGES, LANGUAGE_NAMES=NAMES, SHORT_NAMES=SHORT_NAMES)
MEMBER_ACTIONS = ("adjust", "adjust_requested", "freeze", "unfreeze", "restrict")  # web/member_actions.py
templates.env.globals["once_field"] = once_field  # action forms do their work once (web/forms.py)
templates.env.globals["mask"] = mask  # personal data as 138****1234, 王*
templates.env.globals["may"] = lambda who, permission: who.role in PERMISSIONS[permission]  # nav links by role


class Refused(Exception):
    """A console request that is turned away with the 403 page: a missing or wrong CSRF token, or a
    role without the permission. Nothing has been changed when it is raised."""

    def __init__(self, reason: str, who: Principal | None = None):
        super().__init__(reason)
        self.reason, self.who = reason, who


def refused_page(request: Request, exc: Refused) -> HTMLResponse:
    return render(request, "refused.html", status=403, who=exc.who, reason=exc.reason)


def signed_in(request: Request, jifen_console: Annotated[str | None, Cookie()] = None) -> Principal:
    """Console pages need a live session (cookie); without one, the sign-in page."""
    now = utcnow()
    with request.app.state.read_sessions() as session:
        active = sessions.lookup(session, jifen_console, now)
    if active is None:
        raise HTTPException(303, "sign in first", headers={"Location": "/console/login"})
    if active.touch:
        run_in_transaction(request.app.state.sessions, lambda s: sessions.touch(s, active.session_id, now))
    who = active.user.principal()
    request.state.principal = who  # console writes are audited like API writes (api.py)
    request.state.csrf, request.state.console_session = active.csrf, active.session_id
    return who


SignedIn = Annotated[Principal, Depends(signed_in)]


def same_token(given: str, expected: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), cast(str, expected).encode())


def form_writer(request: Request, who: SignedIn, csrf: Annotated[str, Form()] = "") -> Principal:
    """Every console POST: signed in, and the form's hidden `csrf` field equals the session's token
    (synchronizer token; a page of another site can neither read nor guess it)."""
    if not same_token(csrf, request.state.csrf):
        raise Refused("csrf", who)
    return who


Writer = Annotated[Principal, Depends(form_writer)]


def json_writer(request: Request, who: SignedIn) -> Principal:
    """A console POST made by the page's script (JSON): the session's CSRF token comes in the X-CSRF-Token
    header instead of a form field; a wrong one is a JSON 403."""
    if not same_token(request.headers.get("x-csrf-token", ""), request.state.csrf):
        raise Forbidden("the page has expired or did not come from this console; reload it", code="csrf")
    return who


JsonWriter = Annotated[Principal, Depends(json_writer)]


def allowed(permission: str, *, write: bool = False):
    """A console page (write=True: a POST, CSRF-checked first) for roles with this permission only."""
    first = form_writer if write else signed_in

    def check(who: Principal = Depends(first)) -> Principal:  # (a default: the annotation is read lazily)
        if who.role not in PERMISSIONS[permission]:
            raise Refused("forbidden", who)
        return who

    return Depends(check)


@router.get("/members")
def members(request: Request, who: SignedIn, q: str | None = None, tier: str | None = None, low: str | None = None,
            high: str | None = None, page: str | None = None):
    """A member by id or phone (the phone's keyed hash: it is stored encrypted); else the filtered list."""
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        if q:
            try:
                return member_page(request, who, session, program, get_member(session, program, q.strip()))
            except NotFound:
                by_phone = find_by_phone(session, program, q.strip())
                if by_phone is not None:
                    return member_page(request, who, session, program, by_phone)
        try:
            filters, error = member_list.Filters.parse(tier, low, high, page), None
        except InvalidRequest as exc:
            filters, error = member_list.Filters(), exc.message
        return render(request, "members.html", who=who, found=member_list.listing(session, program, filters),
                      filters=filters, q=q, error=error, status=404 if q else 422 if error else 200)


@router.get("/members/{member_id}")
def member(request: Request, member_id: str, who: SignedIn):
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        try:
            found = get_member(session, program, member_id)
        except NotFound:
            return render(request, "members.html", who=who, found=None, q=member_id, status=404)
        return member_page(request, who, session, program, found)


@router.post("/members/{member_id}/reveal")
def reveal(request: Request, member_id: str, who: Annotated[Principal, allowed("pii:read", write=True)]):
    """The member's personal data in clear, for a role that may see it: a POST, so the audit log records
    who looked at whom."""
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        return member_page(request, who, session, program, get_member(session, program, member_id), reveal=True)


def member_page(request, who, session, program, m: Member, reveal: bool = False, *, status: int = 200,
                 error: str | None = None, form: dict | None = None):
    now = utcnow()
    tier = tiers.progress(session, program, m, now)
    events = session.scalars(select(Event).where(Event.member_pk == m.id)
                             .order_by(Event.occurred_at.desc(), Event.id.desc()).limit(20)).all()
    wallets = session.scalars(select(Wallet).where(Wallet.program_id == program.id).order_by(Wallet.id)).all()
    balances = [balance_view(session, program, w, m, now) for w in wallets]
    ids = select(Posting.entry_id).where(Posting.member_pk == m.id)
    entries = entry_views(session, list(session.scalars(
        select(JournalEntry).where(JournalEntry.id.in_(ids)).order_by(JournalEntry.id.desc()).limit(50))))
    shown = (lambda v: v or "") if reveal else mask  # personal data masked unless revealed (and audited)
    return render(request, "member.html", status=status, who=who, m=m, person=shown(m.name), phone=shown(m.phone),
                  email=shown(m.email) if reveal else None, revealed=reveal, balances=balances,
                  entries=entries, tz=program.timezone, tier=tier, events=events,
                  event_points=lambda e: stored_view(e, m.member_id)["points"],
                  lots=member_lots(session, m), restrictions=member_restrictions(session, m, now),
                  requests=approvals.pending_for(session, m), threshold=approvals.threshold(program),
                  error=error, form=form or {}, done=done_of(request, MEMBER_ACTIONS))


@router.get("/rules")
def rules(request: Request, who: SignedIn, published: int | None = None):
    """The rules in force, those announced, the tiers and every version; after a publish (?published=N)
    the new version with the announcement members now see."""
    with request.app.state.read_sessions() as session:
        program, now = session.get(Program, who.program_id), utcnow()
        all_versions = versions(session, program)
        live = in_force(session, program, now)
        new = next((v for v in all_versions if v.version == published), None)
        notice = None
        if new is not None:
            before = in_force(session, program, new.effective_from - dt.timedelta(microseconds=1))
            notice = (new, changes(program, before, new), (new.effective_from - now).days)
        return render(request, "rules.html", who=who, live=live, tz=program.timezone, program_code=program.code,
                       upcoming=[v for v in all_versions if v.effective_from > now], history=all_versions[::-1],
                       issued=points_by_rule(session, program, now - dt.timedelta(days=30)), notice=notice,
                       ladder=tiers.tier_config(program))
