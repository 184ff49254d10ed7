"""The member centre (H5, mobile-first, /m/…): the member's own balance, history and tier here; the mall in
web/member_mall.py; check-in, tasks, invitations, gifts and messages in web/member_engage.py.

Signing in: the brand's app gets a member token for its signed-in member (POST /v1/members/{id}/token with its
API key) and opens /m/enter?token=…; the page exchanges it for a cookie session of its own
(security/member_tokens.py) and sends the browser on without the token in the address. Pages read through
the services the API uses; every action goes through the same flow or service as the API's, once per
idempotency key the form carries (a double tap replays the first answer). The pages add no business rule.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Form, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.apikit import scope
from jifen.db import run_in_transaction, utcnow
from jifen.errors import JifenError, Unauthorized
from jifen.events.models import Event
from jifen.idempotency import idempotent
from jifen.ledger.models import JournalEntry, Posting
from jifen.ledger.operations import Scope
from jifen.ledger.views import balance_view, entry_views
from jifen.members.models import Member
from jifen.members.service import get_member
from jifen.notify import service as notify
from jifen.notify.reminders import affordable
from jifen.programs import tiers
from jifen.programs.models import Program
from jifen.programs.service import get_wallet
from jifen.risk import cases as risk_cases
from jifen.risk.scoring import RiskBlocked
from jifen.security import member_tokens, ratelimit
from jifen.security.service import Principal
from jifen.web.console import render, same_token
from jifen.web.i18n import CATALOGUE

router = APIRouter(prefix="/m", include_in_schema=False)
COOKIE = "jifen_member"
OWN = ("available", "pending", "held", "frozen")  # a member's own accounts: moving between them changes no total


def visitor(request: Request, jifen_member: Annotated[str | None, Cookie()] = None) -> Principal:
    """The member of the cookie session; without one, the page that says to come in from the app."""
    claims = member_tokens.read_centre_session(jifen_member)
    if claims is None or jifen_member is None:
        raise HTTPException(303, "enter from the app", headers={"Location": "/m/enter"})
    who = Principal(key_id=0, name=claims["sub"], role="member", program_id=claims["prg"], member_id=claims["sub"])
    request.state.principal = who  # its writes are audited like a member token's (api.py)
    request.state.csrf = member_tokens.centre_csrf(jifen_member)
    return who


Visitor = Annotated[Principal, Depends(visitor)]


class Problem(Exception):
    """An action refused before it ran (a stale form): shown like a service's refusal, nothing changed."""

    def __init__(self, code: str, status: int = 403):
        super().__init__(code)
        self.code, self.status = code, status


def actor(request: Request, who: Visitor, csrf: Annotated[str, Form()] = "") -> Principal:
    """Every member-centre POST: a session, the form's CSRF field derived from it, and the member's rate limit
    (the one a member token has at the API)."""
    if not same_token(csrf, request.state.csrf):
        raise Problem("csrf")
    ratelimit.member(who.program_id, who.member_id or "")
    return who


Actor = Annotated[Principal, Depends(actor)]
FormKey = Annotated[str, Form(min_length=8, max_length=64)]


def problem_page(request: Request, exc: JifenError | Problem) -> HTMLResponse:
    """A refusal in the member's language: the label of its code, else the service's own message."""
    key = f"err_{exc.code}"
    message = None if key in CATALOGUE["en"] else getattr(exc, "message", None)
    return render(request, "m/problem.html", status=exc.status, key=key if message is None else None,
                  message=message)


def member_of(session: Session, who: Principal) -> tuple[Program, Member]:
    program = session.get_one(Program, who.program_id)
    return program, get_member(session, program, who.member_id or "")


def act(request: Request, who: Principal, key: str, operation: str, payload: dict[str, Any],
        work: Callable[[Scope, Member], Any]) -> Any:
    """`work` once per form key, in one transaction, through the ledger's scope (as `apikit.write` for the
    API); the answer, or the problem page for a refusal (risk control's recorded as the API records it)."""
    def tx(session: Session):
        sc = scope(session, who)
        member = get_member(session, sc.program, who.member_id or "")
        return idempotent(session, who.program_id, f"m:{who.member_id}:{key}", operation, payload,
                          lambda: jsonable_encoder(work(sc, member)))[0]

    try:
        return run_in_transaction(request.app.state.sessions, tx)
    except RiskBlocked as exc:
        risk_cases.record_refusal(request.app.state.sessions, who.program_id, exc)
        return problem_page(request, exc)
    except JifenError as exc:
        return problem_page(request, exc)


def form_key() -> str:
    """The idempotency key a form carries: made when the page is shown, so a resubmission replays."""
    return secrets.token_urlsafe(16)


def page(request: Request, name: str, who: Principal, **context) -> HTMLResponse:
    return render(request, name, who=who, key=form_key(), **context)


@router.get("/enter")
def enter(request: Request, token: str | None = None):
    """The app's way in: a member token (15 minutes) for a session cookie; anything else, the way back to the app."""
    try:
        claims = member_tokens.read(token) if token else None
    except Unauthorized:
        claims = None
    if claims is None:
        return render(request, "m/enter.html", status=401)
    response = RedirectResponse("/m/", status_code=303)
    response.set_cookie(COOKIE, member_tokens.centre_session(claims, utcnow()), httponly=True, samesite="lax",
                        path="/m", secure=request.url.scheme == "https", max_age=int(member_tokens.CENTRE_TTL.total_seconds()))
    response.headers["Referrer-Policy"] = "no-referrer"  # the token in this address goes nowhere else
    return response


@router.post("/leave")
def leave(request: Request, who: Actor):
    response = RedirectResponse("/m/enter", status_code=303)
    response.delete_cookie(COOKIE, path="/m")
    return response


@router.get("/")
def home(request: Request, who: Visitor):
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        now = utcnow()
        balance = balance_view(s, program, get_wallet(s, program, None), member, now)
        soonest = balance["next_expiries"][0] if balance["next_expiries"] else None
        unread = sum(1 for i in notify.inbox(s, member, True, 100))
        return page(request, "m/home.html", who, program=program, member=member, b=balance, soonest=soonest,
                    can_buy=affordable(program, balance["available"]) if soonest else None,
                    tier=tiers.progress(s, program, member, now), unread=unread)


PERIODS = (30, 90, 365)
KINDS = ("all", "earned", "spent")


def own_change(entry: dict, member_id: str) -> tuple[int, int]:
    """(change of the member's total, of which pending): a hold or a maturing moves points between the
    member's own accounts and changes no total."""
    mine = [p for p in entry["postings"] if p["member_id"] == member_id and p["account"] in OWN]
    return sum(p["amount"] for p in mine), sum(p["amount"] for p in mine if p["account"] == "pending")


@router.get("/history")
def history(request: Request, who: Visitor, kind: str = "all", days: int = 90):
    if kind not in KINDS or days not in PERIODS:
        return problem_page(request, JifenError(f"kind is one of {', '.join(KINDS)}; days one of 30, 90, 365",
                                                code="invalid_request", status=422))
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        since = utcnow() - dt.timedelta(days=days)
        ids = select(Posting.entry_id).where(Posting.member_pk == member.id)
        entries = entry_views(s, list(s.scalars(select(JournalEntry).where(
            JournalEntry.id.in_(ids), JournalEntry.occurred_at >= since).order_by(JournalEntry.id.desc()).limit(300))))
        rows = [(e, *own_change(e, member.member_id)) for e in entries]
        wanted = {"all": lambda d: True, "earned": lambda d: d > 0, "spent": lambda d: d < 0}[kind]
        return page(request, "m/history.html", who, rows=[r for r in rows if wanted(r[1])], kind=kind, days=days,
                    kinds=KINDS, periods=PERIODS, tz=program.timezone, why=event_types(s, program, entries))


def event_types(session: Session, program: Program, entries: list[dict]) -> dict[str, str]:
    """What each event-borne entry was for (a check-in, a purchase …), by its reference `event:<event id>`."""
    ids = {e["reference"][6:] for e in entries if (e["reference"] or "").startswith("event:")}
    if not ids:
        return {}
    found = session.execute(select(Event.event_id, Event.type).where(Event.program_id == program.id,
                                                                     Event.event_id.in_(ids)))
    return {f"event:{event_id}": kind for event_id, kind in found}


@router.get("/tier")
def tier(request: Request, who: Visitor):
    with request.app.state.read_sessions() as s:
        program, member = member_of(s, who)
        return page(request, "m/tier.html", who, tier=tiers.progress(s, program, member, utcnow()),
                    ladder=tiers.tier_config(program), tz=program.timezone)
