"""Members: creation (with their ledger accounts in every wallet) and look-up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jifen.db import among, utcnow
from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.programs.models import Program, Wallet
from jifen.security.pii import lookup

ERASED_PREFIX = "erased-"  # an erased member's placeholder id (members/privacy.py)


@dataclass
class NewMember:
    member_id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    attributes: dict | None = None
    joined_at: dt.datetime | None = None
    birthday: dt.date | None = None


def create_member(session: Session, program: Program, member_id: str, *, name: str | None = None,
                  phone: str | None = None, email: str | None = None, attributes: dict | None = None,
                  joined_at: dt.datetime | None = None, birthday: dt.date | None = None) -> Member:
    """One member, with its accounts in every wallet."""
    return create_members(session, program, [NewMember(member_id, name, phone, email, attributes, joined_at,
                                                       birthday)])[0]


def create_members(session: Session, program: Program, people: Sequence[NewMember]) -> list[Member]:
    """Members with their accounts in every wallet, in a few statements whatever their number; an id taken
    (or given twice) refuses them all (409 member_exists)."""
    ids = [p.member_id for p in people]
    reserved = next((i for i in ids if i.startswith(ERASED_PREFIX)), None)
    if reserved is not None:
        raise InvalidRequest(f"member ids starting with {ERASED_PREFIX!r} are reserved for erased members",
                             code="reserved_member_id")
    taken = next((i for i in session.scalars(_TAKEN, {"program": program.id, "ids": ids})), None)
    if taken is None and len(set(ids)) < len(ids):
        taken = next(i for i in ids if ids.count(i) > 1)
    if taken is not None:
        raise Conflict(f"member {taken!r} already exists", code="member_exists")
    now = utcnow()
    members = [Member(program_id=program.id, member_id=p.member_id, name=p.name, phone=p.phone, email=p.email,
                      attributes=p.attributes or {}, joined_at=p.joined_at or now, birthday=p.birthday)
               for p in people]
    session.add_all(members)
    session.flush()
    wallet_ids = session.scalars(select(Wallet.id).where(Wallet.program_id == program.id)).all()
    ops.open_accounts(session, wallet_ids, [m.id for m in members])
    return members


_TAKEN = select(Member.member_id).where(Member.program_id == bindparam("program"), among(Member.member_id, "ids"))
_MEMBER = select(Member).where(Member.program_id == bindparam("program"), Member.member_id == bindparam("member"))


def get_member(session: Session, program: Program, member_id: str, *, erased_ok: bool = False) -> Member:
    """The member by the brand's id. An erased member (found only by its erased-… placeholder) is refused,
    409 member_erased: nothing more is written for, or read about, them."""
    return found(session.scalar(_MEMBER, {"program": program.id, "member": member_id}), member_id, erased_ok=erased_ok)


def found(member: Member | None, member_id: str, *, erased_ok: bool = False) -> Member:
    """`get_member`'s answer for the member read by the brand's id (None: not found)."""
    if member is None:
        raise NotFound(f"unknown member {member_id!r}", code="unknown_member")
    if member.erased_at is not None and not erased_ok:
        raise Conflict(f"member {member_id!r} was erased", code="member_erased")
    return member


def find_by_phone(session: Session, program: Program, phone: str) -> Member | None:
    """Found through the keyed hash: the stored phone is encrypted."""
    return session.scalar(select(Member).where(Member.program_id == program.id, Member.phone_hash == lookup(phone)))
