"""Refunds: a refund event takes back its order's points in proportion, cumulatively, per wallet."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.events.models import Event
from jifen.events.schemas import EventIn
from jifen.events.usage import save_usage
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.rules.engine import limits_for, period_keys
from jifen.rules.service import doc_of


def refund(ctx, ev: EventIn, member: Member) -> dict:
    """Take back the order's points in proportion to the refunded share, cumulatively and per wallet:
    several partial refunds that add up to the whole order take back exactly what the order earned,
    corrections by `jifen rules recompute` included."""
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
    result = purchase.result
    entries = [dict(e) for e in result.get("entries", [])]
    corrections = [dict(c) for c in result.get("corrections", [])]
    reversals = []
    for wallet in dict.fromkeys(x["wallet"] for x in entries + corrections):
        # What the order earned in this wallet, corrections included, and what refunds took back so far.
        mine = [e for e in entries if e["wallet"] == wallet]
        fixes = [c for c in corrections if c["wallet"] == wallet]
        gross = sum(e["points"] for e in mine) + sum(c["points"] for c in fixes)
        done = sum(e["reversed"] for e in mine) + sum(c.get("refunded", 0) for c in fixes)
        n = int((Decimal(gross) * refunded / order_amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)) - done
        scope = ctx.scope(None if wallet == ctx.wallets[None].code else wallet)
        for source, field in [(e, "reversed") for e in mine] + [(c, "refunded") for c in fixes if c["points"] > 0]:
            take = min(n, ops.reversible(scope, source["entry_id"])) if n > 0 else 0
            if take:
                reversal = ops.reverse(scope, source["entry_id"], take, reason=f"refund {ev.event_id}")
                reversals.append({"wallet": wallet, "entry_id": reversal.id, "points": take})
                source[field] = source.get(field, 0) + take
                n -= take
    give_back_usage(ctx, purchase, purchase.refunded_amount, refunded)
    if refunded >= order_amount:
        reversals += _undo_referral_reward(ctx, purchase, ev)
    purchase.refunded_amount = refunded
    purchase.points_reversed += sum(r["points"] for r in reversals)
    purchase.result = {**result, "entries": entries, **({"corrections": corrections} if corrections else {})}
    return {"refund_of": purchase.event_id, "refunded_amount": str(amount), "entries": reversals}


def _share(points: int, part: Decimal, whole: Decimal) -> int:
    return int((Decimal(points) * part / whole).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def give_back_usage(ctx, purchase: Event, before: Decimal, after: Decimal) -> None:
    """What a refund takes back returns to the caps and budgets its rules were counted against (in the
    periods of the purchase), so a refunded order no longer uses up a member's daily cap or a campaign."""
    rule_set = next((v for v in ctx.versions if v.version == purchase.rule_version), None)
    if rule_set is None or not purchase.amount:
        return
    doc = doc_of(rule_set)
    rules = {r.code: r for r in doc.rules}
    periods = period_keys(purchase.occurred_at, ctx.tz)
    book = ctx.usage_book()
    for line in purchase.result.get("rules", []):
        rule = rules.get(line["rule"])
        limits = limits_for(doc, rule, purchase.member_pk, periods) if rule else []
        back = _share(line["points"], after, purchase.amount) - _share(line["points"], before, purchase.amount)
        if limits and back > 0:
            book.release([k for k, _ in limits], back)
    save_usage(ctx.session, ctx.program.id, book)


def _undo_referral_reward(ctx, purchase: Event, ev: EventIn) -> list[dict]:
    """A first order refunded in full: the inviter's reward for it is taken back (no reward for a
    cancelled first order)."""
    reward = ctx.session.scalar(select(Event).where(Event.program_id == ctx.program.id,
                                                    Event.event_id == f"invite_purchase:{purchase.event_id}"))
    done = []
    for e in (reward.result.get("entries", []) if reward else []):
        scope = ctx.scope(None if e["wallet"] == ctx.wallets[None].code else e["wallet"])
        n = ops.reversible(scope, e["entry_id"])
        if n:
            ops.reverse(scope, e["entry_id"], n, reason=f"first order refunded ({ev.event_id})")
            done.append({"wallet": e["wallet"], "entry_id": e["entry_id"], "points": 0, "referral_reversed": n})
    if reward is not None and done:
        reward.points_reversed += sum(d["referral_reversed"] for d in done)
    return done
