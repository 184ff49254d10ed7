"""Members' rights over their data (PIPL art. 44–47, GDPR art. 15, 17, 20): export everything held about a
member as one JSON document, erase a member by anonymising them, and re-encrypt personal data after a key
rotation. What erasure keeps, and why, is in docs/security.md ("Privacy")."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import cast

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from jifen.engagement.models import Friendship, InviteCode, Referral, TeamMember
from jifen.errors import Conflict
from jifen.events.models import Event
from jifen.idempotency import IdempotencyRecord
from jifen.ledger import operations as ops
from jifen.ledger.models import FROZEN, HELD, Hold, JournalEntry, Posting
from jifen.ledger.views import balance_view, entry_views
from jifen.mall.models import Coupon, Redemption, Reward
from jifen.members import consent
from jifen.members.models import Member
from jifen.members.service import ERASED_PREFIX
from jifen.notify.models import InboxItem, OptOut
from jifen.programs import tiers
from jifen.programs.models import Program, Wallet
from jifen.risk.models import MemberDevice

FORMAT = "jifen.member-export/1"


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _ids(session: Session, pks) -> dict[int, str]:
    pks = list({pk for pk in pks if pk})
    return dict(session.execute(select(Member.id, Member.member_id).where(Member.id.in_(pks))).all()) if pks else {}


def export(session: Session, program: Program, member: Member, now: dt.datetime) -> dict:
    """Everything held about the member, personal data in clear (the caller is the member or may read it)."""
    wallets = list(session.scalars(select(Wallet).where(Wallet.program_id == program.id).order_by(Wallet.id)))
    entry_ids = select(Posting.entry_id).where(Posting.member_pk == member.id)
    entries = list(session.scalars(select(JournalEntry).where(JournalEntry.id.in_(entry_ids)).order_by(JournalEntry.id)))
    rewards = dict(session.execute(select(Reward.id, Reward.code)).all())
    redemptions = list(session.scalars(select(Redemption).where(Redemption.member_pk == member.id)
                                       .order_by(Redemption.id)))
    coupons = list(session.scalars(select(Coupon).where(Coupon.member_pk == member.id).order_by(Coupon.expires_at)))
    events = list(session.scalars(select(Event).where(Event.member_pk == member.id).order_by(Event.occurred_at, Event.id)))
    friends = list(session.scalars(select(Friendship.friend_pk).where(Friendship.member_pk == member.id)))
    referrals = list(session.scalars(select(Referral).where(
        or_(Referral.inviter_pk == member.id, Referral.invitee_pk == member.id)).order_by(Referral.id)))
    names = _ids(session, [*friends, *(r.inviter_pk for r in referrals), *(r.invitee_pk for r in referrals)])
    team = session.get(TeamMember, member.id)
    inbox = list(session.scalars(select(InboxItem).where(InboxItem.member_pk == member.id).order_by(InboxItem.id)))
    from jifen.engagement import tasks  # engagement imports the mall, which imports members: import late

    return {
        "format": FORMAT,
        "exported_at": now.isoformat(),
        "programme": program.code,
        "profile": {
            "member_id": member.member_id, "name": member.name, "phone": member.phone, "email": member.email,
            "birthday": _iso(member.birthday), "attributes": member.attributes or {},
            "joined_at": _iso(member.joined_at), "created_at": _iso(member.created_at),
        },
        "tier": tiers.progress(session, program, member, now),
        "balances": [balance_view(session, program, w, member, now) for w in wallets],
        "ledger": entry_views(session, entries),
        "events": [{"event_id": e.event_id, "type": e.type, "channel": e.channel, "occurred_at": _iso(e.occurred_at),
                    "amount": None if e.amount is None else str(e.amount), "order_id": e.order_id, "data": e.data,
                    "points": e.points, "refunded_amount": str(e.refunded_amount),
                    "points_reversed": e.points_reversed} for e in events],
        "redemptions": [{"redemption_id": r.id, "reward": rewards.get(r.reward_id), "quantity": r.quantity,
                         "points": r.points, "cash": str(r.cash), "status": r.status, "address": r.address or None,
                         "created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at)} for r in redemptions],
        "coupons": [{"code": c.code, "reward": rewards.get(c.reward_id), "status": c.status,
                     "expires_at": _iso(c.expires_at), "used_at": _iso(c.used_at), "store": c.store}
                    for c in coupons],
        "consents": consent.state(session, member),
        "notification_opt_outs": sorted(session.scalars(select(OptOut.channel).where(OptOut.member_pk == member.id))),
        "friends": sorted(names[f] for f in friends if f in names),
        "referrals": {
            "invited_by": next((names.get(r.inviter_pk) for r in referrals if r.invitee_pk == member.id), None),
            "invited": [names.get(r.invitee_pk) for r in referrals if r.inviter_pk == member.id],
            "invite_code": session.scalar(select(InviteCode.code).where(InviteCode.member_pk == member.id)),
        },
        "team": team.team_id if team else None,
        "badges": tasks.badges(session, member),
        "tasks": tasks.progress(session, program, member, now),
        "inbox": [{"topic": i.topic, "title": i.title, "body": i.body, "created_at": _iso(i.created_at),
                   "read_at": _iso(i.read_at)} for i in inbox],
    }


def _forfeit_or_refuse(sc: ops.Scope, member: Member) -> dict[str, int]:
    """Points cannot stay with nobody: every wallet's available and pending points are forfeited (one
    `forfeit` entry per wallet, into the expiry account — the books still balance). Points held for an
    order or frozen by risk control refuse the erasure until the order or the investigation is settled."""
    wallets = list(sc.session.scalars(select(Wallet).where(Wallet.program_id == sc.program.id).order_by(Wallet.id)))
    accounts = {w.id: ops.open_members(sc, w, member)[0] for w in wallets}
    open_holds = sc.session.scalar(select(Hold.id).where(Hold.member_pk == member.id, Hold.status == "open").limit(1))
    if open_holds is not None or any(a[HELD].balance for a in accounts.values()):
        raise Conflict("points are held for an order (a redemption, pool or red packet): settle or cancel it first",
                       code="points_held")
    if any(a[FROZEN].balance for a in accounts.values()):
        raise Conflict("points are frozen by risk control: unfreeze or settle the case first", code="points_frozen")
    forfeited = {}
    for w in wallets:
        entry = ops.forfeit(sc, member, w, reason="member erased at their request")
        if entry is not None:
            forfeited[w.code] = entry.points
    return forfeited


def erase(sc: ops.Scope, member: Member) -> dict:
    """Anonymise the member (idempotent: an erased member is left as it is). The ledger, its chain and
    every total stay whole; the brand's member id no longer resolves."""
    if member.erased_at is not None:
        return erasure_view(member, {}, already=True)
    with sc.session.begin_nested():
        forfeited = _forfeit_or_refuse(sc, member)
        s = sc.session
        member.member_id = f"{ERASED_PREFIX}{secrets.token_hex(8)}"
        member.name = member.phone = member.email = member.birthday = None  # phone_hash follows the phone
        member.attributes = {}
        member.erased_at = sc.now
        for r in s.scalars(select(Redemption).where(Redemption.member_pk == member.id)):
            if r.address and (r.address or {}).get("pooled") is None:
                r.address = {"erased": True}  # address_hash follows (none)
        s.execute(delete(InboxItem).where(InboxItem.member_pk == member.id))
        s.execute(delete(Friendship).where(or_(Friendship.member_pk == member.id, Friendship.friend_pk == member.id)))
        s.execute(delete(InviteCode).where(InviteCode.member_pk == member.id))
        s.execute(delete(MemberDevice).where(MemberDevice.member_pk == member.id))  # devices and IP addresses
        consent.withdraw_all(s, member, sc.now, sc.actor or "erasure")
        s.flush()
    return erasure_view(member, forfeited)


def erasure_view(member: Member, forfeited: dict[str, int], already: bool = False) -> dict:
    return {"member_id": member.member_id, "erased_at": cast(dt.datetime, member.erased_at).isoformat(),  # (erased)
            "already_erased": already,
            "forfeited_points": forfeited,
            "kept": ["ledger entries, postings and lots (points evidence, hash-chained)", "events",
                     "redemptions and coupons without address", "consent history", "referrals (member ids)",
                     "tier and join date"]}


# (table, model, encrypted columns) re-encrypted by a key rotation.
ENCRYPTED = ((Member, ("name", "phone", "email", "birthday")), (Redemption, ("address",)),
             (IdempotencyRecord, ("response",)))


def rotate_keys(session: Session) -> dict[str, int]:
    """Every encrypted value written again with the first key of JIFEN_DATA_KEYS; rows counted per table."""
    counts = {}
    for model, columns in ENCRYPTED:
        n = 0
        for row in session.scalars(select(model).execution_options(yield_per=1000)):
            for column in columns:
                if getattr(row, column) is not None:
                    flag_modified(row, column)  # written again: encrypted with the current key
            n += 1
        session.flush()
        counts[model.__tablename__] = n
    return counts

