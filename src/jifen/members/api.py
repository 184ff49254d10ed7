"""Member API: register a member, read a member, balances and ledger history."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.ledger.api import Key, scope, write
from jifen.ledger.models import JournalEntry, Posting
from jifen.ledger.schemas import MemberIn
from jifen.ledger.views import balance_view, entry_views
from jifen.members.models import Member
from jifen.members.service import create_member, get_member
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.security import member_tokens
from jifen.security.deps import require
from jifen.security.pii import mask
from jifen.security.service import Principal

router = APIRouter(prefix="/v1/members", tags=["members"])
Reader = Annotated[Principal, Depends(require("members:read"))]
Writer = Annotated[Principal, Depends(require("members:write"))]


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
        return member_view(sc.session, sc.program, m, reveal=who.may("pii:read"))

    return write(request, who, key, "members.create", body, work, status=201)


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
