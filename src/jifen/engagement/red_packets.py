"""Red packets (紅包) through the ledger: sending holds each share on the sender; a claim releases one
share's hold and transfers it to the friend (the points keep their expiry dates); at expiry the shares
nobody claimed are released back. One share per friend; concurrent claims never give a share twice."""

from __future__ import annotations

import datetime as dt
import random
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.db import owned
from jifen.engagement.models import RedPacket, RedPacketShare
from jifen.errors import Conflict, InvalidRequest
from jifen.ledger import operations as ops
from jifen.ledger.engine import lock_members
from jifen.members.models import Member
from jifen.risk.restrictions import ensure_unrestricted

MAX_SHARES = 100
DAILY_POINTS = 10_000  # most points one member may send in red packets per 24 hours
_rng = random.SystemRandom()


def split(points: int, shares: int, how: str, rng: random.Random = _rng) -> list[int]:
    """Equal (the remainder spread one point each) or random: each share between 1 and twice the mean of
    what is left, the last taking the rest — every share at least 1, the sum exact."""
    if how == "equal":
        base, extra = divmod(points, shares)
        return [base + (1 if i < extra else 0) for i in range(shares)]
    out, left = [], points
    for k in range(shares, 1, -1):
        cap = max(1, min(left - (k - 1), 2 * left // k - 1))
        part = rng.randint(1, cap)
        out.append(part)
        left -= part
    return out + [left]


@ops.atomic
def send(sc: ops.Scope, sender: Member, points: int, shares: int, how: str, expires_in: dt.timedelta,
         message: str = "") -> RedPacket:
    if how not in ("random", "equal"):
        raise InvalidRequest("split is random or equal", code="invalid_split")
    if not 1 <= shares <= MAX_SHARES or points < shares:
        raise InvalidRequest(f"1 to {MAX_SHARES} shares of at least one point each", code="invalid_shares")
    lock_members(sc.session, [sender.id])
    sent = cast(int, sc.session.scalar(select(func.coalesce(func.sum(RedPacket.points), 0)).where(
        RedPacket.sender_pk == sender.id, RedPacket.created_at > sc.now - dt.timedelta(days=1))))
    if sent + points > DAILY_POINTS:
        raise Conflict(f"at most {DAILY_POINTS} points in red packets a day", code="limit_reached")
    packet = RedPacket(program_id=sc.program.id, sender_pk=sender.id, points=points, shares=shares, split=how,
                       message=message, status="open", expires_at=sc.now + expires_in, created_at=sc.now)
    sc.session.add(packet)
    sc.session.flush()
    ensure_unrestricted(sc.session, [sender.id], sc.now)
    for i, part in enumerate(split(points, shares, how)):
        hold = ops.hold(sc, sender, part, reference=f"red packet {packet.id}")
        sc.session.add(RedPacketShare(packet_id=packet.id, position=i, points=part, hold_id=hold.id))
    sc.session.flush()
    return packet


def get_packet(session: Session, program_id: int, packet_id: int) -> RedPacket:
    return owned(session, RedPacket, packet_id, program_id, "red packet", "unknown_red_packet")


@ops.atomic
def claim(sc: ops.Scope, packet: RedPacket, member: Member) -> RedPacketShare:
    if member.id == packet.sender_pk:
        raise Conflict("the sender cannot claim their own red packet", code="own_packet")
    lock_members(sc.session, [packet.sender_pk, member.id])  # claims of one packet queue on its sender
    sc.session.refresh(packet)
    if packet.status == "finished":
        raise Conflict(f"red packet {packet.id} is empty", code="packet_empty")
    if packet.status != "open" or packet.expires_at <= sc.now:
        raise Conflict(f"red packet {packet.id} has expired", code="packet_closed")
    shares = select(RedPacketShare).where(RedPacketShare.packet_id == packet.id)
    if sc.session.scalar(shares.where(RedPacketShare.claimed_by == member.id)):
        raise Conflict("this member already has a share of the packet", code="already_claimed")
    share = sc.session.scalar(shares.where(RedPacketShare.claimed_by.is_(None)).order_by(RedPacketShare.position)
                              .limit(1))
    if share is None:
        raise Conflict(f"red packet {packet.id} is empty", code="packet_empty")
    ops.release(sc, share.hold_id)
    sender = sc.session.get_one(Member, packet.sender_pk)
    ensure_unrestricted(sc.session, [sender.id, member.id], sc.now)
    entry = ops.transfer(sc, sender, member, share.points, reference=f"red packet {packet.id}",
                         reason=packet.message or "紅包")
    share.claimed_by, share.claimed_at, share.transfer_entry_id = member.id, sc.now, entry.id
    if not sc.session.scalar(shares.where(RedPacketShare.claimed_by.is_(None)).limit(1)):
        packet.status = "finished"
    sc.session.flush()
    return share


def expire_due(sc: ops.Scope) -> int:
    """Open packets past their expiry: the unclaimed shares go back to the sender."""
    done = 0
    for packet in sc.session.scalars(select(RedPacket).where(RedPacket.program_id == sc.program.id,
                                                             RedPacket.status == "open",
                                                             RedPacket.expires_at <= sc.now)):
        lock_members(sc.session, [packet.sender_pk])
        for share in sc.session.scalars(select(RedPacketShare).where(RedPacketShare.packet_id == packet.id,
                                                                     RedPacketShare.claimed_by.is_(None))):
            ops.release(sc, share.hold_id)
        packet.status = "expired"
        done += 1
    return done


def view(session: Session, packet: RedPacket) -> dict:
    shares = list(session.scalars(select(RedPacketShare).where(RedPacketShare.packet_id == packet.id)
                                  .order_by(RedPacketShare.position)))
    names = dict(session.execute(select(Member.id, Member.member_id).where(
        Member.id.in_([s.claimed_by for s in shares if s.claimed_by] + [packet.sender_pk]))).all())
    return {"id": packet.id, "sender": names[packet.sender_pk], "points": packet.points, "shares": packet.shares,
            "split": packet.split, "message": packet.message, "status": packet.status,
            "expires_at": packet.expires_at.isoformat(),
            "claimed": [{"member_id": names[s.claimed_by], "points": s.points} for s in shares if s.claimed_by],
            "left": sum(s.points for s in shares if s.claimed_by is None) if packet.status == "open" else 0}
