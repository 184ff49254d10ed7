"""What the audit log is searched by, besides who and when: the kind of action a line records and the
member it concerns. Both are read off the line's method, path and detail (which the hash chain covers),
so they are columns to search by, not facts of their own: `audit.verify` derives them again and reports
a line whose columns disagree."""

from __future__ import annotations

import re

# The first path segment (after /v1, /console or /m) to the kind of action; anything else is "other_writes".
# (Codes with an underscore: a plain word such as "rules" would read as an unlabelled code wherever it is shown.)
AREAS = {
    "members": "member_records", "points": "points_moved", "holds": "points_moved",
    "events": "event_intake", "batch": "event_intake",
    "rules": "rules_programme", "tiers": "rules_programme", "program": "rules_programme",
    "mall": "mall_orders", "rewards": "mall_orders", "redemptions": "mall_orders", "orders": "mall_orders",
    "lotteries": "mall_orders", "partners": "mall_orders", "coupons": "coupon_write_off",
    "webhooks": "webhook_delivery", "deliveries": "webhook_delivery", "notifications": "webhook_delivery",
    "risk": "risk_control", "restrictions": "risk_control",
    "campaigns": "campaign_ops", "experiments": "campaign_ops", "bandits": "campaign_ops",
    "bandit-simulations": "campaign_ops", "automations": "campaign_ops",
    "check-in": "engagement_ops", "tasks": "engagement_ops", "teams": "engagement_ops", "gifts": "engagement_ops",
    "red-packets": "engagement_ops", "pools": "engagement_ops", "referrals": "engagement_ops",
    "invite": "engagement_ops", "ugc-awards": "engagement_ops", "messages": "engagement_ops", "leave": "engagement_ops",
    "users": "sign_in_access", "api-keys": "sign_in_access", "login": "sign_in_access", "logout": "sign_in_access",
    "approvals": "adjust_approval",
}
# A member's own sub-resources that belong to another kind (the console's member page actions).
MEMBER_ACTIONS = {"adjust": "points_moved", "freeze": "points_moved", "unfreeze": "points_moved",
                  "reverse": "points_moved", "restrict": "risk_control", "reveal": "pii_viewed", "erase": "member_records"}
ACTIONS = ("member_records", "points_moved", "adjust_approval", "event_intake", "rules_programme", "mall_orders",
           "coupon_write_off", "webhook_delivery", "risk_control", "campaign_ops", "engagement_ops", "sign_in_access",
           "pii_viewed", "other_writes")
_FACE = re.compile(r"^/(?:v1|console|m)(?=/|$)")
_MEMBER = re.compile(r"^/(?:v1|console)/members/([^/]+)(?:/([^/]+))?")


def action_of(path: str) -> str:
    member = _MEMBER.match(path)
    if member and member.group(2) in MEMBER_ACTIONS:
        return MEMBER_ACTIONS[member.group(2)]
    rest = _FACE.sub("", path).strip("/")
    return AREAS.get(rest.split("/")[0], "other_writes") if rest else "other_writes"


def member_of(path: str, detail: dict | None) -> str | None:
    """The member id a line is about: named by the request (detail["member"], e.g. an approval), else in
    its path (/v1/members/{id}/…, /console/members/{id}/…)."""
    named = (detail or {}).get("member")
    if named:
        return str(named)[:64]
    found = _MEMBER.match(path)
    return found.group(1)[:64] if found else None
