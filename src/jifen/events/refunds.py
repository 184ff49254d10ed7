"""Refunds: a refund event takes back its order's points in proportion, cumulatively, per wallet."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.events.models import Event
from jifen.events.schemas import EventIn
from jifen.ledger import operations as ops
from jifen.members.models import Member


def refund(ctx, ev: EventIn, member: Member) -> dict:
    """Take back the order's points in proportion to the refunded share, cumulatively: several partial
    refunds that add up to the whole order take back exactly what the order earned."""
    if not ev.order_id:
        raise InvalidRequest("a refund needs the order_id of its purchase", code="missing_order_id")
    purchase = ctx.session.scalar(select(Event).where(
        Event.program_id == ctx.program.id, Event.order_id == ev.order_id, Event.type == "purchase"
    ).order_by(Event.id).limit(1))
    if purchase is None:
        raise NotFound(f"no purchase with order_id {ev.order_id!r}", code="unknown_order")
    if purchase.member_pk != member.id:
        raise Conflict(f"order {ev.order_id!r} belongs to another member", code="order_of_another_member")
    order_amount = purchase.amount or Decimal(0)
    remaining = order_amount - purchase.refunded_amount
    amount = remaining if ev.amount is None else ev.amount
    if remaining <= 0:
        raise Conflict(f"order {ev.order_id!r} is already fully refunded", code="already_refunded")
    if amount <= 0 or amount > remaining:
        raise Conflict(f"refund of ¥{amount} exceeds the ¥{remaining} left on order {ev.order_id!r}",
                       code="refund_exceeds_order")
    refunded = purchase.refunded_amount + amount
    entries, reversals = [], []
    for e in purchase.result.get("entries", []):
        target = (Decimal(e["points"]) * refunded / order_amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        n = int(target) - e["reversed"]
        wallet = e["wallet"] if e["wallet"] != ctx.wallets[None].code else None
        if n > 0:  # (a recompute may already have taken some back: never more than the entry has left)
            n = min(n, ops.reversible(ctx.scope(wallet), e["entry_id"]))
        if n > 0:
            reversal = ops.reverse(ctx.scope(wallet), e["entry_id"], n, reason=f"refund {ev.event_id}")
            reversals.append({"wallet": e["wallet"], "entry_id": reversal.id, "points": n})
        entries.append({**e, "reversed": e["reversed"] + max(n, 0)})
    purchase.refunded_amount = refunded
    purchase.points_reversed += sum(r["points"] for r in reversals)
    purchase.result = {**purchase.result, "entries": entries}
    return {"refund_of": purchase.event_id, "refunded_amount": str(amount), "entries": reversals}
