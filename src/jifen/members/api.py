"""Member API: register a member, read a member, balances and ledger history."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select

from jifen.apikit import Key, NoBody, scope, write
from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.ledger.models import JournalEntry, Posting
from jifen.ledger.schemas import MemberIn
from jifen.ledger.views import balance_view, entry_views
from jifen.members import consent, privacy
from jifen.members.models import Member
from jifen.members.service import create_member, get_member
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.security import member_tokens
from jifen.security.deps import require
from jifen.security.pii import mask
from jifen.security.service import Principal
from jifen.strict import Strict

router = APIRouter(prefix="/v1/members", tags=["members"])
Reader = Annotated[Principal, Depends(require("members:read"))]
Writer = Annotated[Principal, Depends(require("members:write"))]
PiiReader = Annotated[Principal, Depends(require("pii:read"))]
Eraser = Annotated[Principal, Depends(require("members:erase"))]


def member_view(session, program, member: Member, reveal: bool = False) -> dict:
    """The member; personal data masked (138****1234) unless the caller's role may read it."""
    now = utcnow()
    shown = (lambda v: v) if reveal else mask
    wallets = session.scalars(select(Wallet).where(Wallet.program_id == program.id).order_by(Wallet.id)).all()
    return {
        "member_id": member.member_id,
        "name": shown(member.name),
        "phone": shown(member.phone),
        "email": shown(member.email),
        "attributes": member.attributes,
        "joined_at": member.joined_at.isoformat(),
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "tier": tiers.progress(session, program, member, now),
        "balances": [balance_view(session, program, w, member, now) for w in wallets],
    }


@router.post("", status_code=201, summary="Register a member under the brand's own member id")
def create(body: MemberIn, request: Request, who: Writer, key: Key):
    def work(sc):
        m = create_member(sc.session, sc.program, body.member_id, name=body.name, phone=body.phone,
                          email=body.email, attributes=body.attributes, joined_at=body.joined_at,
                          birthday=body.birthday)
        return {"member_id": m.member_id}  # what the idempotency record keeps: no personal data

    done = write(request, who, key, "members.create", body, work, status=201)
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        view = member_view(session, program, get_member(session, program, body.member_id), reveal=who.may("pii:read"))
    return JSONResponse(view, status_code=201, headers={"Idempotent-Replayed": done.headers["Idempotent-Replayed"]})


@router.get("/{member_id}", summary="A member with balances in every wallet")
def show(member_id: str, request: Request, who: Reader):
    with request.app.state.read_sessions() as session:
        sc = scope(session, who)
        return member_view(session, sc.program, get_member(session, sc.program, member_id),
                           reveal=who.may("pii:read") or who.member_id == member_id)


@router.get("/{member_id}/balance", summary="Available, pending, held, frozen, debt and next expiries")
def balance(member_id: str, request: Request, who: Reader, wallet: str | None = None):
    with request.app.state.read_sessions() as session:
        sc = scope(session, who, wallet)
        return balance_view(session, sc.program, sc.wallet, get_member(session, sc.program, member_id), sc.now)


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError:
        raise InvalidRequest("malformed cursor", code="invalid_cursor") from None


@router.get("/{member_id}/ledger", summary="The member's entries, newest first (cursor pagination)")
def ledger(member_id: str, request: Request, who: Reader, wallet: str | None = None,
           limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None):
    before = _decode_cursor(cursor)
    with request.app.state.read_sessions() as session:
        sc = scope(session, who, wallet)
        m = get_member(session, sc.program, member_id)
        ids = select(Posting.entry_id).where(Posting.member_pk == m.id).distinct()
        if before is not None:
            ids = ids.where(Posting.entry_id < before)
        stmt = (select(JournalEntry).where(JournalEntry.id.in_(ids), JournalEntry.wallet_id == sc.wallet.id)
                .order_by(JournalEntry.id.desc()).limit(limit + 1))
        entries = session.scalars(stmt).all()
        page = entries[:limit]
        more = len(entries) > limit
        return {
            "items": entry_views(session, list(page)),
            "next_cursor": base64.urlsafe_b64encode(str(page[-1].id).encode()).decode() if more else None,
        }


@router.post("/{member_id}/token", summary="A 15-minute member token for the brand's app (acts only on this member)")
def member_token(member_id: str, request: Request, who: Writer):
    with request.app.state.read_sessions() as session:
        member = get_member(session, session.get(Program, who.program_id), member_id)
        return member_tokens.issue(who.program_id, member.member_id, utcnow())


# ---- privacy: consents, export, erasure (members/consent.py, members/privacy.py) -----------------------

class DecisionIn(Strict):
    purpose: str = Field(max_length=32)
    granted: bool


class ConsentsIn(Strict):
    decisions: list[DecisionIn] = Field(min_length=1, max_length=len(consent.PURPOSES))
    policy_version: str = Field(min_length=1, max_length=32)  # the privacy policy the member was shown
    source: str | None = Field(None, max_length=16)  # app, web, console, api, pos, paper, import


@router.get("/{member_id}/consents", summary="Consent per purpose: the current decision and the history")
def consents(member_id: str, request: Request, who: Reader):
    with request.app.state.read_sessions() as session:
        member = get_member(session, session.get(Program, who.program_id), member_id)
        return {"member_id": member.member_id, **consent.state(session, member)}


@router.post("/{member_id}/consents", status_code=201, summary="Record consent decisions (append-only)")
def record_consents(member_id: str, body: ConsentsIn, request: Request, who: Writer, key: Key):
    def work(sc):
        member = get_member(sc.session, sc.program, member_id)
        consent.record(sc.session, member, [(d.purpose, d.granted) for d in body.decisions],
                       source=body.source or ("app" if who.member_id else "api"), policy_version=body.policy_version,
                       actor="member" if who.member_id else who.actor, now=sc.now)
        return {"member_id": member.member_id, **consent.state(sc.session, member)}

    return write(request, who, key, f"consents.record:{member_id}", body, work, status=201)


@router.get("/{member_id}/export", summary="Everything held about the member, as one JSON document")
def export(member_id: str, request: Request, who: PiiReader):
    with request.app.state.read_sessions() as session:
        program = session.get(Program, who.program_id)
        return privacy.export(session, program, get_member(session, program, member_id), utcnow())


@router.post("/{member_id}/erase", summary="Erase the member: personal data anonymised, the ledger kept whole")
def erase(member_id: str, request: Request, who: Eraser, key: Key):
    return write(request, who, key, f"members.erase:{member_id}", NoBody(), lambda sc: privacy.erase(
        sc, get_member(sc.session, sc.program, member_id, erased_ok=True)))
