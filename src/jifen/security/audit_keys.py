"""What the audit log is searched by, besides who and when: the kind of action a line records and the
member it concerns. Both are read off the line's method, path and detail (which the hash chain covers),
so they are columns to search by, not facts of their own: `audit.verify` derives them again and reports
a line whose columns disagree."""

from __future__ import annotations

import re

# The first path segment (after /v1, /console or /m) to the kind of action; anything else is "other".
AREAS = {
    "members": "members", "points": "points", "holds": "points", "events": "events", "batch": "events",
    "rules": "rules", "tiers": "rules", "program": "rules",
    "mall": "mall", "rewards": "mall", "redemptions": "mall", "orders": "mall", "lotteries": "mall",
    "partners": "mall", "coupons": "coupons",
    "webhooks": "webhooks", "deliveries": "webhooks", "notifications": "webhooks",
    "risk": "risk", "restrictions": "risk",
    "campaigns": "campaigns", "experiments": "campaigns", "bandits": "campaigns", "bandit-simulations": "campaigns",
    "automations": "campaigns",
    "check-in": "engagement", "tasks": "engagement", "teams": "engagement", "gifts": "engagement",
    "red-packets": "engagement", "pools": "engagement", "referrals": "engagement", "invite": "engagement",
    "ugc-awards": "engagement", "messages": "engagement", "leave": "engagement",
    "users": "access", "api-keys": "access", "login": "access", "logout": "access",
    "approvals": "approvals",
}
# A member's own sub-resources that belong to another kind (the console's member page actions).
MEMBER_ACTIONS = {"adjust": "points", "freeze": "points", "unfreeze": "points", "reverse": "points",
                  "restrict": "risk", "reveal": "pii", "erase": "members"}
ACTIONS = ("members", "points", "approvals", "events", "rules", "mall", "coupons", "webhooks", "risk", "campaigns",
           "engagement", "access", "pii", "other")
_FACE = re.compile(r"^/(?:v1|console|m)(?=/|$)")
_MEMBER = re.compile(r"^/(?:v1|console)/members/([^/]+)(?:/([^/]+))?")


def action_of(path: str) -> str:
    member = _MEMBER.match(path)
    if member and member.group(2) in MEMBER_ACTIONS:
        return MEMBER_ACTIONS[member.group(2)]
    rest = _FACE.sub("", path).strip("/")
    return AREAS.get(rest.split("/")[0], "other") if rest else "other"


def member_of(path: str, detail: dict | None) -> str | None:
    """The member id a line is about: named by the request (detail["member"], e.g. an approval), else in
    its path (/v1/members/{id}/…, /console/members/{id}/…)."""
    named = (detail or {}).get("member")
    if named:
        return str(named)[:64]
    found = _MEMBER.match(path)
    return found.group(1)[:64] if found else None
