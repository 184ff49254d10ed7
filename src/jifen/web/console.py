"""The operator console: server-rendered pages over the same services as the API.

Sign-in is with an API key for now (kept in an HttpOnly, SameSite=Strict cookie); console users
with passwords and roles come with the security issue.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Cookie, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from jifen.db import utcnow
from jifen.errors import NotFound
from jifen.events.models import Event
from jifen.events.service import stored_view
from jifen.ledger.models import ChainHead, JournalEntry, Posting
from jifen.ledger.views import balance_view, entry_views
from jifen.members.models import Member
from jifen.members.service import find_by_phone, get_member
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.rules.service import in_force, versions
from jifen.security import ratelimit
from jifen.security.service import Principal, authenticate
from jifen.web.i18n import LANGUAGES, translator
from jifen.web.stats import overview, points_by_rule

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)
COOKIE = "jifen_console"


def mask_phone(phone: str | None) -> str:
    """138****1234: enough for customer service to confirm, not enough to copy."""
    if not phone:
        return ""
    digits = phone.replace(" ", "").replace("-", "")
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("jifen_lang") or "zh"
    return lang if lang in LANGUAGES else "zh"


def local_time(iso: str | None, timezone: str = "Asia/Shanghai") -> str:
    """An ISO UTC timestamp as the programme's wall-clock time, to the minute."""
    if not iso:
        return ""
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local"] = local_time


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    lang = _lang(request)
    response = templates.TemplateResponse(request, name, {"t": translator(lang), "lang": lang, **context},
                                          status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie("jifen_lang", lang, samesite="strict", path="/console")
    return response


def _who(request: Request, key: str | None) -> Principal | None:
    if not key:
        return None
    with request.app.state.read_sessions() as session:
        return authenticate(session, key)


def signed_in(request: Request, jifen_console: Annotated[str | None, Cookie()] = None) -> Principal:
    """Console pages need a valid key in the cookie; without one, the sign-in page."""
    who = _who(request, jifen_console)
    if who is None:
        raise HTTPException(303, "sign in first", headers={"Location": "/console/login"})
    request.state.principal = who  # console writes are audited like API writes
    return who


SignedIn = Annotated[Principal, Depends(signed_in)]


@router.get("/login")
def login_form(request: Request):
    return render(request, "login.html")


@router.post("/login")
def login(request: Request, api_key: Annotated[str, Form()]):
    address = request.client.host if request.client else "unknown"
    if ratelimit.auth_blocked(address):
        return render(request, "login.html", status=429, error=True)
    if _who(request, api_key.strip()) is None:
        try:
            ratelimit.failed_auth(address)
        except ratelimit.RateLimited:
            return render(request, "login.html", status=429, error=True)
        return render(request, "login.html", status=401, error=True)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(COOKIE, api_key.strip(), httponly=True, samesite="strict", path="/console")
    return response


@router.get("/logout")
def logout():
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("")
def home(request: Request, who: SignedIn):
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        figures = overview(session, program, utcnow())
        head = session.get(ChainHead, program.id)
        latest = entry_views(session, list(session.scalars(
            select(JournalEntry).where(JournalEntry.program_id == program.id)
            .order_by(JournalEntry.id.desc()).limit(15))))
        return render(request, "overview.html", who=who, o=figures, head=head, latest=latest, tz=program.timezone)


@router.get("/members")
def members(request: Request, who: SignedIn, q: str | None = None):
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        if q:
            try:
                return _member_page(request, who, session, program, get_member(session, program, q.strip()))
            except NotFound:
                by_phone = find_by_phone(session, program, q.strip())
                if by_phone is not None:
                    return _member_page(request, who, session, program, by_phone)
        recent = session.scalars(select(Member).where(Member.program_id == program.id)
                                 .order_by(Member.id.desc()).limit(30)).all()
        return render(request, "members.html", who=who, recent=recent, q=q, mask=mask_phone,
                       status=404 if q else 200)


@router.get("/members/{member_id}")
def member(request: Request, member_id: str, who: SignedIn):
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        try:
            found = get_member(session, program, member_id)
        except NotFound:
            return render(request, "members.html", who=who, recent=[], q=member_id, mask=mask_phone, status=404)
        return _member_page(request, who, session, program, found)


def _member_page(request, who, session, program, m: Member):
    now = utcnow()
    tier = tiers.progress(session, program, m, now)
    events = session.scalars(select(Event).where(Event.member_pk == m.id)
                             .order_by(Event.occurred_at.desc(), Event.id.desc()).limit(20)).all()
    wallets = session.scalars(select(Wallet).where(Wallet.program_id == program.id).order_by(Wallet.id)).all()
    balances = [balance_view(session, program, w, m, now) for w in wallets]
    ids = select(Posting.entry_id).where(Posting.member_pk == m.id)
    entries = entry_views(session, list(session.scalars(
        select(JournalEntry).where(JournalEntry.id.in_(ids)).order_by(JournalEntry.id.desc()).limit(50))))
    return render(request, "member.html", who=who, m=m, phone=mask_phone(m.phone), balances=balances,
                   entries=entries, tz=program.timezone, tier=tier, events=events,
                   event_points=lambda e: stored_view(e, m.member_id)["points"])


@router.get("/rules")
def rules(request: Request, who: SignedIn):
    with request.app.state.read_sessions() as session:
        program, now = session.get(Program, who.program_id), utcnow()
        all_versions = versions(session, program)
        live = in_force(session, program, now)
        return render(request, "rules.html", who=who, live=live, tz=program.timezone, program_code=program.code,
                       upcoming=[v for v in all_versions if v.effective_from > now], history=all_versions[::-1],
                       issued=points_by_rule(session, program, now - dt.timedelta(days=30)),
                       ladder=tiers.tier_config(program))
