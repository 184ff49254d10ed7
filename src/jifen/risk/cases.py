"""What a verdict leaves behind, and the review queue.

flag: a `risk.alert` outbox message (delivered to webhook subscribers by the dispatcher, every 2 s).
review: the alert and a case; the transaction goes on but its points wait — an earn's points are frozen
(its own lots, and those of the member's other non-purchase earnings of the last hour: the whole burst),
a redemption is in status `review`, a spend becomes a hold. block: the alert and a case; nothing else is
written. A person approves (frozen points given back, order goes on, hold captured), rejects (frozen
points reversed, order cancelled, hold released) or rejects and freezes the member for 90 days."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.errors import Conflict, InvalidRequest, NotFound
from jifen.members.models import Member
from jifen.outbox import emit
from jifen.risk.models import RiskCase
from jifen.risk.scoring import RiskBlocked, Verdict

STATUSES = ("open", "approved", "rejected")
DECISIONS = {"approve": "approved", "reject": "rejected", "freeze_member": "rejected"}


def record(session: Session, program_id: int, who: tuple[int, str], at: dt.datetime, verdict: Verdict,
           subject_kind: str, subject_id: str | None, now: dt.datetime) -> RiskCase | None:
    """The alert for a flag, review or block, and the case for a review or block. who: (member pk, id)."""
    if verdict.action == "allow":
        return None
    case = _open_burst(session, who[0]) if (verdict.action, subject_kind) == ("review", "event") else None
    if case is not None:  # the member's burst already waits in review: one case, however many events
        case.score = max(case.score, verdict.score)
        merged = {r["code"]: r for r in case.reasons}
        for r in verdict.reasons:  # each reason at its strongest
            if r["weight"] >= merged.get(r["code"], {"weight": -1})["weight"]:
                merged[r["code"]] = r
        case.reasons = list(merged.values())
        case.details = {**case.details, "events": [*case.details.get("events", [case.subject_id]), subject_id]}
        verdict.case_id = case.id
    elif verdict.action in ("review", "block"):
        case = RiskCase(program_id=program_id, member_pk=who[0], subject_kind=subject_kind,
                        subject_id=subject_id, score=verdict.score, reasons=verdict.reasons, action=verdict.action,
                        details={}, status="open", created_at=now)
        session.add(case)
        session.flush()
        verdict.case_id = case.id
    top = next((r for r in verdict.reasons if r["code"] == verdict.rule), {})
    emit(session, program_id, "risk.alert", {
        "rule": verdict.rule, "action": verdict.action, "score": verdict.score, "reasons": verdict.reasons,
        "member_pk": who[0], "member_id": who[1], "subject": subject_kind, "subject_id": subject_id,
        "case_id": verdict.case_id, "at": at.isoformat(), **{k: top[k] for k in ("value", "limit") if k in top}},
        who[0])
    return case


def _open_burst(session: Session, member_pk: int) -> RiskCase | None:
    return session.scalar(select(RiskCase).where(RiskCase.member_pk == member_pk, RiskCase.subject_kind == "event",
                                                 RiskCase.action == "review", RiskCase.status == "open")
                          .order_by(RiskCase.id.desc()).limit(1))


def record_block(session: Session, program_id: int, exc: RiskBlocked, now: dt.datetime) -> RiskCase | None:
    """A refused transaction's alert and case (beside the rest of its batch)."""
    return record(session, program_id, exc.who, exc.at, exc.verdict, exc.subject_kind, exc.subject_id, now)


def record_refusal(factory, program_id: int, exc: RiskBlocked) -> None:
    """The same after the refused request's own transaction was rolled back: in a transaction of its own."""
    from jifen.db import run_in_transaction, utcnow

    run_in_transaction(factory, lambda s: record_block(s, program_id, exc, utcnow()))


def get_case(session: Session, program_id: int, case_id: int) -> RiskCase:
    case = session.get(RiskCase, case_id)
    if case is None or case.program_id != program_id:
        raise NotFound(f"no risk case {case_id}", code="unknown_case")
    return case


def mark_decided(case: RiskCase, decision: str, note: str, actor: str | None, now: dt.datetime) -> None:
    """Record a reviewer's decision on an open case: approve | reject | freeze_member (flows/review.py
    carries it out)."""
    if not (note or "").strip():
        raise InvalidRequest("a decision needs a reason", code="reason_required")
    if case.status != "open":
        raise Conflict(f"risk case {case.id} was already {case.status}", code="case_decided")
    case.status, case.decision, case.decision_note = DECISIONS[decision], decision, note.strip()
    case.decided_by, case.decided_at = actor, now


def close_for(session: Session, program_id: int, subject_kind: str, subject_id, decision: str, actor: str | None,
              now: dt.datetime, note: str) -> None:
    """A subject decided elsewhere (a redemption approved through its own route): its open case follows."""
    for case in session.scalars(select(RiskCase).where(
            RiskCase.program_id == program_id, RiskCase.subject_kind == subject_kind,
            RiskCase.subject_id == str(subject_id), RiskCase.status == "open")):
        case.status, case.decision, case.decision_note = DECISIONS[decision], decision, note
        case.decided_by, case.decided_at = actor, now


def view(case: RiskCase, member_id: str) -> dict:
    return {"id": case.id, "member_id": member_id, "subject_kind": case.subject_kind, "subject_id": case.subject_id,
            "score": case.score, "action": case.action, "reasons": case.reasons, "details": case.details,
            "status": case.status, "created_at": case.created_at.isoformat(), "decision": case.decision,
            "decided_by": case.decided_by, "decided_at": case.decided_at.isoformat() if case.decided_at else None,
            "decision_note": case.decision_note}


def list_cases(session: Session, program_id: int, status: str | None = "open", limit: int = 100,
               after: int = 0) -> list[dict]:
    q = (select(RiskCase, Member.member_id).join(Member, Member.id == RiskCase.member_pk)
         .where(RiskCase.program_id == program_id, RiskCase.id > after).order_by(RiskCase.id).limit(limit))
    if status:
        q = q.where(RiskCase.status == status)
    return [view(c, mid) for c, mid in session.execute(q)]


def recent_decisions(session: Session, program_id: int, limit: int = 20) -> list[dict]:
    """The last decided cases, newest decision first."""
    q = (select(RiskCase, Member.member_id).join(Member, Member.id == RiskCase.member_pk)
         .where(RiskCase.program_id == program_id, RiskCase.status != "open")
         .order_by(RiskCase.decided_at.desc(), RiskCase.id.desc()).limit(limit))
    return [view(c, mid) for c, mid in session.execute(q)]
