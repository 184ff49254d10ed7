"""The console's risk page: the review queue decided through forms (CSRF-checked, by role), restrictions
lifted with a reason, the account-graph scan shown."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.db import utcnow
from jifen.risk.models import MemberRestriction, RiskCase
from tests.conftest import Ledger
from tests.risk.test_risk import FARM_RULES
from tests.support.console_login import console_as
from tests.support.intake import add_members, configure, event, send

FARM = {"device_id": "farm-phone-9", "ip": "100.64.0.99"}


def farm(factory, n: int = 7) -> list[str]:
    """n new accounts on one phone, each sharing five times a minute: from the fifth on, each one's burst
    is a case in review."""
    configure(factory, {"pending_days": {}} | FARM_RULES, now=utcnow() - dt.timedelta(days=1))
    now, bots = utcnow(), [f"bot{i}" for i in range(n)]
    add_members(factory, *bots, joined_at=now - dt.timedelta(hours=2))
    for bot in bots:
        send(factory, *[event(bot, "share", at=now - dt.timedelta(seconds=50 - i), attributes=FARM) for i in range(5)],
             now=now)
    return bots


def cases(factory) -> dict[int, RiskCase]:
    with factory() as s:
        return {c.id: c for c in s.scalars(select(RiskCase).order_by(RiskCase.id))}


def test_the_review_queue_is_decided_from_the_console(app, factory):
    bots = farm(factory)
    # bot4, bot5, bot6 came once the phone held five accounts; their 4th and 5th shares passed 100 points a
    # minute: one case each, naming both events, holding the whole burst.
    assert sorted((c.member_pk, len(c.details["events"])) for c in cases(factory).values()) == [(5, 2), (6, 2), (7, 2)]
    assert Ledger(factory).balances("bot6")["frozen"] == 150
    first, second, third = cases(factory)
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator")
        page = client.get("/console/risk")
        assert page.status_code == 200
        assert all(bot in page.text for bot in bots) and "farm-phone-9" in page.text  # queue and graph scan
        assert "同一设备多账户" in page.text and "shared_device" not in page.text  # the reason's label, not its code
        assert f'action="/console/risk/cases/{first}"' in page.text
        # Without the session's token nothing happens.
        forged = client.post(f"/console/risk/cases/{first}", data={"decision": "approve", "note": "ok"})
        assert forged.status_code == 403 and cases(factory)[first].status == "open"
        ok = client.post(f"/console/risk/cases/{first}", data={"decision": "approve", "note": "device checked",
                                                               "csrf": csrf}, follow_redirects=False)
        assert ok.status_code == 303 and cases(factory)[first].status == "approved"
        decided = cases(factory)[first]
        assert (decided.decision, decided.decision_note, decided.decided_by) == ("approve", "device checked",
                                                                                 decided.decided_by)
        assert decided.decided_by.startswith("user:")
        # Deciding twice, or without a reason: refused with the reason shown, nothing changed.
        again = client.post(f"/console/risk/cases/{first}", data={"decision": "reject", "note": "x", "csrf": csrf})
        assert again.status_code == 200 and "already" in again.text and cases(factory)[first].status == "approved"
        blank = client.post(f"/console/risk/cases/{second}", data={"decision": "reject", "note": " ", "csrf": csrf})
        assert blank.status_code == 200 and cases(factory)[second].status == "open"
        client.post(f"/console/risk/cases/{second}", data={"decision": "reject", "note": "farm", "csrf": csrf})
        client.post(f"/console/risk/cases/{third}", data={"decision": "freeze_member", "note": "farm", "csrf": csrf})
        assert (cases(factory)[second].status, cases(factory)[third].status) == ("rejected", "rejected")
        with factory() as s:
            [frozen] = s.scalars(select(MemberRestriction)).all()
        assert f'action="/console/risk/restrictions/{frozen.id}/lift"' in client.get("/console/risk").text
        lifted = client.post(f"/console/risk/restrictions/{frozen.id}/lift", data={"note": "appeal upheld", "csrf": csrf})
        assert lifted.status_code == 200
        with factory() as s:
            assert s.get(MemberRestriction, frozen.id).status == "lifted"
    assert Ledger(factory).verify() == []


def test_who_sees_the_risk_page_and_who_decides(app, factory):
    farm(factory, n=5)
    case_id = next(iter(cases(factory)))
    for role, sees, decides in [("auditor", True, False), ("customer_service", True, False), ("finance", False, False),
                                ("admin", True, True)]:
        with TestClient(app) as client:
            csrf = console_as(client, app, role)
            page = client.get("/console/risk")
            assert (page.status_code == 200) is sees, role
            assert ('href="/console/risk"' in client.get("/console").text) is sees, role
            if sees:
                assert ('name="decision"' in page.text) is decides, role
            if not decides:
                refused = client.post(f"/console/risk/cases/{case_id}", data={"decision": "approve", "note": "x",
                                                                               "csrf": csrf})
                assert refused.status_code == 403 and cases(factory)[case_id].status == "open", role
