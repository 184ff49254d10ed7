"""A risk decision carried out: risk control decides (risk/), this flow moves the points and orders.

A review freezes what is under review (`hold_earnings`); the reviewer's decision (`decide`) gives it
back or takes it away — frozen lots unfrozen or their awards reversed, a held redemption approved or
rejected, a held spend captured or released — and `freeze_member` also freezes the member.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import cast

from sqlalchemy import select

from jifen.events.models import Event
from jifen.ledger import operations as ops
from jifen.ledger.models import Lot
from jifen.mall import service as mall
from jifen.members.models import Member
from jifen.programs.models import Wallet
from jifen.risk import restrictions
from jifen.risk.cases import mark_decided
from jifen.risk.models import RiskCase
from jifen.risk.scoring import risk_config


def hold_earnings(sc: ops.Scope, case: RiskCase, member: Member, event_ids: list[str]) -> None:
    """Freeze the points of the reviewed events and of the member's other non-purchase earnings of the
    last hour (still available); the case remembers exactly which lots, for its decision."""
    s = sc.session
    recent = s.execute(select(Event.event_id, Event.result).where(
        Event.member_pk == member.id, Event.points > 0, ((Event.type != "purchase") & (
            Event.occurred_at > sc.now - dt.timedelta(hours=1))) | Event.event_id.in_(event_ids))).all()
    entries = {e["entry_id"] for _, result in recent for e in (result or {}).get("entries", [])}
    if not entries:
        return
    lots = s.execute(select(Lot.id, Lot.wallet_id, Lot.source_entry_id).where(
        Lot.source_entry_id.in_(sorted(entries)), Lot.member_pk == member.id, Lot.available > 0)).all()
    by_wallet = defaultdict(list)
    for lot_id, wallet_id, entry_id in lots:
        by_wallet[wallet_id].append((lot_id, entry_id))
    frozen = []
    for wallet_id, items in sorted(by_wallet.items()):
        scope = ops.Scope(s, sc.program, s.get_one(Wallet, wallet_id), sc.now, actor="risk")
        _, moved = ops.freeze_lots(scope, member, [lot for lot, _ in items], reason=f"risk case {case.id}",
                                   reference=f"risk:{case.id}")
        frozen += [[lot, moved[lot], entry, wallet_id] for lot, entry in items if lot in moved]
    case.details = {**case.details, "frozen": case.details.get("frozen", []) + frozen}


def decide(sc: ops.Scope, case: RiskCase, decision: str, note: str) -> RiskCase:
    """approve | reject | freeze_member (reject, and the member frozen for the programme's freeze_days)."""
    mark_decided(case, decision, note, sc.actor, sc.now)
    s = sc.session
    member = s.get_one(Member, case.member_pk)
    s.flush()
    approve = decision == "approve"
    if case.action == "review":
        _settle(sc, case, member, approve)
    if decision == "freeze_member":
        r = restrictions.impose(s, member, "freeze", days=risk_config(sc.program).freeze_days,
                                reason=f"risk case {case.id}: {note.strip()}", actor=sc.actor, now=sc.now)
        case.details = {**case.details, "restriction_id": r.id}
    return case


def _settle(sc: ops.Scope, case: RiskCase, member: Member, approve: bool) -> None:
    """What the review held back: given back (approve) or taken away (reject)."""
    s = sc.session
    if case.subject_kind == "event":
        for lot_id, points, entry_id, wallet_id in case.details.get("frozen", []):
            scope = ops.Scope(s, sc.program, s.get_one(Wallet, wallet_id), sc.now, actor=sc.actor)
            if approve:
                ops.unfreeze_lots(scope, member, {lot_id: points}, reason=f"risk case {case.id} approved",
                                  reference=f"risk:{case.id}")
            else:
                frozen = s.get_one(Lot, lot_id).frozen
                if min(points, frozen, ops.reversible(scope, entry_id)) > 0:
                    ops.reverse(scope, entry_id, min(points, frozen, ops.reversible(scope, entry_id)),
                                reason=f"risk case {case.id} rejected")
    # subject_id is None only for a refusal's case (action "block"), never for one under review.
    elif case.subject_kind == "redemption":
        r = mall.get_redemption(s, sc.program, int(cast(str, case.subject_id)))
        if r.status == "review":  # (unless decided through /v1/redemptions/{id}/approve|reject already)
            (mall.approve if approve else mall.reject)(sc, r)
    elif case.subject_kind == "spend":
        (ops.capture if approve else ops.release)(sc, int(cast(str, case.subject_id)))
