"""Consent per purpose (PIPL art. 13–14, 29; GDPR art. 6–7): an append-only history of decisions, the
latest per purpose being the member's current choice. Marketing is opt-in: without a granted consent for
a channel's purpose, marketing messages are not sent on it (notify/dispatcher.py); transactional
messages (points awarded, expiring, redemption status …) do not depend on consent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jifen.errors import InvalidRequest
from jifen.members.models import Consent, Member

# The fixed list of purposes (docs/security.md "Privacy"); anything else is refused (422 unknown_purpose).
PURPOSES: dict[str, str] = {
    "marketing_sms": "marketing messages by SMS",
    "marketing_email": "marketing messages by e-mail",
    "marketing_wechat": "marketing messages by WeChat template message",
    "marketing_inapp": "marketing messages in the member's in-app inbox",
    "profiling": "analytics and personalisation of offers from the member's behaviour",
    "partner_sharing": "sharing the member's data with partner programmes",
}
SOURCES = ("app", "web", "console", "api", "pos", "paper", "import")
ERASURE = "erasure"  # the source of the withdrawals written when a member is erased
# The purpose a marketing message needs on each member channel.
CHANNEL_PURPOSE = {"sms": "marketing_sms", "email": "marketing_email", "wechat": "marketing_wechat",
                   "inapp": "marketing_inapp"}


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise InvalidRequest(f"unknown consent purpose {purpose!r} (use {', '.join(PURPOSES)})",
                             code="unknown_purpose")
    return purpose


def record(session: Session, member: Member, decisions: list[tuple[str, bool]], *, source: str,
           policy_version: str, actor: str, now: dt.datetime) -> list[Consent]:
    """Append one row per decision; everything is checked before anything is written."""
    if not decisions:
        raise InvalidRequest("no consent decisions given", code="no_decisions")
    purposes = [check_purpose(p) for p, _ in decisions]
    if len(set(purposes)) != len(purposes):
        raise InvalidRequest("a purpose is given twice", code="duplicate_purpose")
    if source not in SOURCES and source != ERASURE:
        raise InvalidRequest(f"unknown consent source {source!r} (use {', '.join(SOURCES)})", code="unknown_source")
    if not (policy_version or "").strip() or len(policy_version) > 32:
        raise InvalidRequest("policy_version must be 1 to 32 characters", code="invalid_policy_version")
    rows = [Consent(program_id=member.program_id, member_pk=member.id, purpose=p, granted=bool(g), source=source,
                    policy_version=policy_version.strip(), actor=actor[:200], at=now) for p, g in decisions]
    session.add_all(rows)
    session.flush()
    return rows


def consent_view(c: Consent) -> dict:
    return {"purpose": c.purpose, "granted": c.granted, "source": c.source, "policy_version": c.policy_version,
            "at": c.at.isoformat()}


def history(session: Session, member: Member) -> list[Consent]:
    return list(session.scalars(select(Consent).where(Consent.member_pk == member.id).order_by(Consent.id)))


def state(session: Session, member: Member) -> dict:
    """Every purpose with its current decision (never decided: granted false, at null) and the history."""
    rows = history(session, member)
    latest = {c.purpose: c for c in rows}
    return {
        "purposes": [{"purpose": p, "description": d, "granted": bool(latest[p].granted) if p in latest else False,
                      "decided": p in latest, "at": latest[p].at.isoformat() if p in latest else None,
                      "policy_version": latest[p].policy_version if p in latest else None}
                     for p, d in PURPOSES.items()],
        "history": [consent_view(c) for c in reversed(rows)],
    }


def granted(session: Session, member_pks, purposes) -> set[tuple[int, str]]:
    """(member, purpose) pairs whose latest decision is a grant."""
    pks, wanted = list(member_pks), list(purposes)
    if not pks or not wanted:
        return set()
    last = (select(func.max(Consent.id)).where(Consent.member_pk.in_(pks), Consent.purpose.in_(wanted))
            .group_by(Consent.member_pk, Consent.purpose))
    return set(session.execute(select(Consent.member_pk, Consent.purpose).where(
        Consent.id.in_(last), Consent.granted.is_(True))).all())


def withdraw_all(session: Session, member: Member, now: dt.datetime, actor: str) -> None:
    """Erasure: every purpose withdrawn, so nothing keyed to the member's id can be sent or shared."""
    current = {p for _, p in granted(session, [member.id], PURPOSES)}
    if current:
        record(session, member, [(p, False) for p in sorted(current)], source=ERASURE, policy_version="erasure",
               actor=actor, now=now)
