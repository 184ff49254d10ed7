"""API keys and what each role may do. (Console users, member tokens and audit come with the
security issue; this is the permission table they will extend.)"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from jifen.db import utcnow
from jifen.errors import InvalidRequest
from jifen.programs.models import Program
from jifen.security.models import ApiKey

ROLES = ("admin", "operator", "customer_service", "auditor", "finance", "pos")
EVERYONE = frozenset(ROLES)
PERMISSIONS: dict[str, frozenset[str]] = {
    "members:read": EVERYONE,
    "ledger:read": EVERYONE,
    "members:write": frozenset({"admin", "operator", "customer_service", "pos"}),
    # Earning, spending and holds: the brand's systems and stores.
    "points:write": frozenset({"admin", "operator", "pos"}),
    # Corrections by people: adjustments, reversals, freezes.
    "points:correct": frozenset({"admin", "operator", "customer_service"}),
    # The checker of an adjustment above the programme's threshold (never its own maker: approvals/).
    "points:approve": frozenset({"admin", "operator", "finance"}),
    # Member events (purchases, check-ins, refunds …): the brand's systems and stores.
    "events:write": frozenset({"admin", "operator", "pos"}),
    "rules:read": EVERYONE,
    # Programme configuration, rule versions, tier evaluation, corrections of past awards.
    "rules:write": frozenset({"admin", "operator"}),
    # What-if replays cost nothing but read every event: operators and finance.
    "rules:simulate": frozenset({"admin", "operator", "finance"}),
    # Webhook subscriptions, their secrets, delivery logs and dead-letter replays: the brand's integrators.
    "webhooks:manage": frozenset({"admin", "operator"}),
    # The catalogue and redemption orders after they are placed (fulfil, cancel, after-sale refund).
    "mall:manage": frozenset({"admin", "operator", "customer_service"}),
    # Risk control: the review queue and restrictions (read), decisions, blacklists and freezes (review).
    "risk:read": frozenset({"admin", "operator", "customer_service", "auditor"}),
    "risk:review": frozenset({"admin", "operator"}),
    # Coupon write-off (核銷) at a till.
    "coupons:redeem": frozenset({"admin", "operator", "pos"}),
    # Personal data in clear (name, phone, e-mail); everyone else sees it masked.
    "pii:read": frozenset({"admin", "customer_service"}),
    # Erasure of a member at their request (personal data anonymised, points forfeited; not undoable).
    "members:erase": frozenset({"admin", "customer_service"}),
    # Settlement and reconciliation reports.
    "reports:read": frozenset({"admin", "operator", "finance", "auditor"}),
    # Console users and API keys: create, change roles, disable or revoke, reset passwords (the super-admin only).
    "users:manage": frozenset({"admin"}),
    # The audit log: who changed what (security/audit.py).
    "audit:read": frozenset({"admin", "auditor"}),
}


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: str
    program_id: int
    member_id: str | None = None  # set for a member token (role "member")
    user_id: int | None = None  # set for a console user (security/users.py)

    @property
    def actor(self) -> str:
        if self.user_id is not None:
            return f"user:{self.user_id}:{self.name}"
        return f"member:{self.member_id}" if self.member_id else f"apikey:{self.key_id}:{self.name}"

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, program: Program, role: str, name: str) -> tuple[ApiKey, str]:
    """Returns the key row and the secret, which is never stored and cannot be shown again."""
    if role not in ROLES:
        raise InvalidRequest(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", code="unknown_role")
    secret = "jf_" + secrets.token_urlsafe(32)
    key = ApiKey(program_id=program.id, name=name, role=role, prefix=secret[:10], key_hash=_digest(secret))
    session.add(key)
    session.flush()
    return key, secret


def authenticate(session: Session, secret: str) -> Principal | None:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(secret), ApiKey.revoked_at.is_(None)))
    return cast(Principal | None, key and Principal(key.id, key.name, key.role, key.program_id))  # (a row is truthy)


def revoke_api_key(session: Session, key_id: int) -> bool:
    global _revocations
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    _revocations += 1
    return True


_revocations = 0  # keys revoked by this process: a KnownKeys entry from before a revocation is not trusted


class KnownKeys:
    """API keys found a moment ago, by digest, so that most requests skip the look-up (on PostgreSQL it was a
    sixth of a single event's server time). A key revoked by this process is refused at once; one revoked by
    another (the CLI, another `jifen serve` worker) within `seconds`. Unknown secrets are never kept."""

    def __init__(self, seconds: float = 1.0, most: int = 10_000) -> None:
        self.seconds, self.most = seconds, most
        self._found: dict[str, tuple[Principal, int, float]] = {}

    def get(self, secret: str) -> Principal | None:
        hit = self._found.get(_digest(secret))
        if hit is None or hit[1] != _revocations or hit[2] < time.monotonic():
            return None
        return hit[0]

    def put(self, secret: str, found: Principal) -> None:
        if len(self._found) >= self.most:  # (keys are few; a bound all the same)
            self._found.clear()
        self._found[_digest(secret)] = (found, _revocations, time.monotonic() + self.seconds)
