"""Points moved at a client's request (the points API): risk control's say first, then the ledger.
The ledger neither knows nor checks who may move points: a blacklisted or frozen member
(risk/restrictions.py) is refused here, and a spend is scored (in review it becomes a hold until a
person decides, flows/review.py)."""

from __future__ import annotations

from typing import Any

from jifen.ledger import operations as ops
from jifen.ledger.models import Hold, JournalEntry
from jifen.ledger.views import entry_view, hold_view
from jifen.members.models import Member
from jifen.risk import cases as risk_cases
from jifen.risk.devices import sightings_of
from jifen.risk.restrictions import ensure_unrestricted
from jifen.risk.scoring import Tx, assess_one


def award(sc: ops.Scope, member: Member, points: int, **kw: Any) -> JournalEntry:
    ensure_unrestricted(sc.session, [member.id], sc.now)
    return ops.award(sc, member, points, **kw)


def transfer(sc: ops.Scope, giver: Member, receiver: Member, points: int, **kw: Any) -> JournalEntry:
    ensure_unrestricted(sc.session, [giver.id, receiver.id], sc.now)
    return ops.transfer(sc, giver, receiver, points, **kw)


def hold(sc: ops.Scope, member: Member, points: int, **kw: Any) -> Hold:
    ensure_unrestricted(sc.session, [member.id], sc.now)
    return ops.hold(sc, member, points, **kw)


def spend(sc: ops.Scope, member: Member, points: int, *, reference: str | None = None, reason: str | None = None,
          device_id: str | None = None, ip: str | None = None) -> dict[str, Any]:
    """The entry's view, with the risk verdict unless it is a plain allow; in review, the hold's view."""
    tx = Tx(member, "spend", sc.now, points=points, sightings=sightings_of(None, device_id, ip))
    verdict = assess_one(sc.session, sc.program, sc.now, tx, "spend")
    risk = {"risk": verdict.view()} if verdict.score or verdict.action != "allow" else {}
    if verdict.action == "review":  # the points wait in a hold: approving the case captures it
        h = hold(sc, member, points, reference=reference or "spend in risk review")
        risk_cases.record(sc.session, sc.program.id, (member.id, member.member_id), sc.now, verdict, "spend", str(h.id),
                          sc.now)
        return hold_view(sc.session, h) | {"status": "review", "risk": verdict.view()}
    ensure_unrestricted(sc.session, [member.id], sc.now)
    entry = ops.spend(sc, member, points, reference=reference, reason=reason)
    risk_cases.record(sc.session, sc.program.id, (member.id, member.member_id), sc.now, verdict, "spend", str(entry.id),
                      sc.now)
    return entry_view(sc.session, entry) | risk
