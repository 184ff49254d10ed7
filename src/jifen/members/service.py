"""Members: creation (with their ledger accounts in every wallet) and look-up."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.db import utcnow
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.programs.models import Program, Wallet
from jifen.rows import insert_rows, new_ids
from jifen.security.pii import lookup

ERASED_PREFIX = "erased-"  # an erased member's placeholder id (members/privacy.py)


def _check_id(member_id: str) -> None:
    if member_id.startswith(ERASED_PREFIX):
        raise InvalidRequest(f"member ids starting with {ERASED_PREFIX!r} are reserved for erased members",
                             code="reserved_member_id")


def create_members(session: Session, program: Program, joined: dict[str, dt.datetime]) -> dict[str, int]:
    """Many new members without personal data (a migration's: {member id: joined at}), in a few statements
    rather than a few each; {member id: pk}. The caller has checked that none exists (the unique key refuses)."""
    for member_id in joined:
        _check_id(member_id)
    pks = dict(zip(joined, new_ids(session, Member, len(joined)), strict=True))
    now = utcnow()
    insert_rows(session, Member, [{"id": pks[mid], "program_id": program.id, "member_id": mid, "attributes": {},
                                   "joined_at": at, "created_at": now} for mid, at in joined.items()])
    wallet_ids = session.scalars(select(Wallet.id).where(Wallet.program_id == program.id)).all()
    ops.open_accounts(session, wallet_ids, list(pks.values()))
    return pks


def create_member(
    session: Session,
    program: Program,
    member_id: str,
    *,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    attributes: dict | None = None,
    joined_at: dt.datetime | None = None,
    birthday: dt.date | None = None,
) -> Member:
    _check_id(member_id)
    if session.scalar(select(Member.id).where(Member.program_id == program.id, Member.member_id == member_id)):
        raise Conflict(f"member {member_id!r} already exists", code="member_exists")
    member = Member(
        program_id=program.id,
        member_id=member_id,
        name=name,
        phone=phone,
        email=email,
        attributes=attributes or {},
        joined_at=joined_at or utcnow(),
        birthday=birthday,
    )
    session.add(member)
    session.flush()
    wallet_ids = session.scalars(select(Wallet.id).where(Wallet.program_id == program.id)).all()
    ops.open_accounts(session, wallet_ids, [member.id])
    return member


_MEMBER = select(Member).where(Member.program_id == bindparam("program"), Member.member_id == bindparam("member"))


def get_member(session: Session, program: Program, member_id: str, *, erased_ok: bool = False) -> Member:
    """The member by the brand's id. An erased member (found only by its erased-… placeholder) is refused,
    409 member_erased: nothing more is written for, or read about, them."""
    member = session.scalar(_MEMBER, {"program": program.id, "member": member_id})
    if member is None:
        raise NotFound(f"unknown member {member_id!r}", code="unknown_member")
    if member.erased_at is not None and not erased_ok:
        raise Conflict(f"member {member_id!r} was erased", code="member_erased")
    return member


def find_by_phone(session: Session, program: Program, phone: str) -> Member | None:
    """Found through the keyed hash: the stored phone is encrypted."""
    return session.scalar(select(Member).where(Member.program_id == program.id, Member.phone_hash == lookup(phone)))
