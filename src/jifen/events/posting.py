"""The awards of priced events posted to the ledger together, one entry per event and wallet."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from jifen.events.context import Intake
from jifen.events.schemas import EventIn
from jifen.ledger.bulk import AwardItem, award_many
from jifen.members.models import Member
from jifen.rules.engine import AwardLine


def post(ctx: Intake, priced: list[tuple[EventIn, Member, list[AwardLine]]]) -> list[list[dict]]:
    """The awards of many events, written together per wallet: one ledger entry per event and wallet,
    carrying the event id and the rules that paid. Returns each event's entries."""
    days = ctx.program.pending_days
    per_wallet: dict[str | None, list[tuple[int, AwardItem]]] = defaultdict(list)
    for n, (ev, member, lines) in enumerate(priced):
        paid: dict[str | None, list[AwardLine]] = defaultdict(list)
        for line in lines:
            if line.points > 0:
                paid[line.wallet].append(line)
        pending_until = ev.occurred_at + dt.timedelta(days=days[ev.type]) if days.get(ev.type) else None
        for wallet, wl in paid.items():
            per_wallet[wallet].append((n, AwardItem(member, sum(li.points for li in wl), ev.occurred_at, pending_until,
                                                    f"event:{ev.event_id}", "rules: " + ", ".join(li.rule for li in wl))))
    out: list[list[dict]] = [[] for _ in priced]
    for wallet, items in per_wallet.items():
        for (n, item), entry in zip(items, award_many(ctx.scope(wallet), [it for _, it in items]), strict=True):
            out[n].append({"wallet": ctx.wallets[wallet].code, "entry_id": entry.id, "points": item.points,
                           "reversed": 0})
    return out
