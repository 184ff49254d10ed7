"""The member page's actions: points adjusted (reason required, done once, in the ledger and the audit log),
points frozen and unfrozen, the member restricted; refusals shown on the page with nothing changed; roles
without the permission see no form and get 403."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry
from jifen.risk.models import MemberRestriction
from jifen.security.audit import AuditEntry
from tests.conftest import Ledger, m
from tests.support.console_login import console_as, once_keys


def forms(html: str) -> dict[str, str]:
    """{action: its one-time key} of the member page's action forms."""
    return {action.rsplit("/", 1)[1]: key for action, key in once_keys(html, "/console/members/M1/").items()}


def seeded(app) -> Ledger:
    ledger = Ledger(app.state.sessions)
    ledger.add_members("M1")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "M1"), 1000, reference="SO-1"))
    return ledger


def adjustments(app) -> list[tuple[int, str | None, str | None]]:
    with app.state.sessions() as s:
        return [(e.points, e.reason, e.actor) for e in s.scalars(
            select(JournalEntry).where(JournalEntry.type == "adjust").order_by(JournalEntry.id))]


def test_points_are_adjusted_once_with_a_reason_and_audited(app):
    ledger = seeded(app)
    with TestClient(app) as client:
        csrf = console_as(client, app, "customer_service")
        page = client.get("/console/members/M1")
        keys = forms(page.text)
        assert set(keys) == {"adjust", "freeze", "unfreeze"}  # customer service may not restrict members
        sent = {"csrf": csrf, "once": keys["adjust"], "points": "-250", "reason": "goodwill reversal"}
        done = client.post("/console/members/M1/adjust", data=sent, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/console/members/M1?done=adjust"
        again = client.post("/console/members/M1/adjust", data=sent, follow_redirects=False)  # a double click
        assert again.status_code == 303
        assert adjustments(app) == [(250, "goodwill reversal", adjustments(app)[0][2])]
        assert adjustments(app)[0][2].startswith("user:")
        assert ledger.balances("M1")["available"] == 750
        assert client.get("/console/members/M1?done=nonsense").status_code == 200  # an unknown outcome: not shown
        shown = client.get("/console/members/M1?done=adjust").text
        assert "goodwill reversal" in shown and "750" in shown
        # Refusals: no reason, not a number, more than the member has — shown, nothing changed.
        for points, reason, message in [("100", " ", "reason"), ("ten", "x", "whole number"),
                                        ("-5000", "too much", "not enough available points")]:
            refused = client.post("/console/members/M1/adjust", data={
                "csrf": csrf, "once": forms(client.get("/console/members/M1").text)["adjust"],
                "points": points, "reason": reason})
            assert refused.status_code == 422 and message in refused.text.lower(), (points, refused.text[-500:])
            assert f'value="{reason}"' in refused.text or not reason.strip()  # the form as it was sent
        assert len(adjustments(app)) == 1 and ledger.balances("M1")["available"] == 750
    with app.state.sessions() as s:
        lines = s.scalars(select(AuditEntry).where(AuditEntry.path == "/console/members/M1/adjust")
                          .order_by(AuditEntry.seq)).all()
    assert [(e.role, e.status) for e in lines] == [("customer_service", 303)] * 2 + [("customer_service", 422)] * 3
    assert any(c["table"] == "journal_entries" for c in lines[0].detail["changes"])
    assert ledger.verify() == []


def test_points_are_frozen_and_unfrozen(app):
    ledger = seeded(app)
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator")

        def send(action: str, points: str, reason: str = "chargeback check"):
            key = forms(client.get("/console/members/M1").text)[action]
            return client.post(f"/console/members/M1/{action}", follow_redirects=False,
                               data={"csrf": csrf, "once": key, "points": points, "reason": reason})

        assert send("freeze", "400").status_code == 303
        assert (ledger.balances("M1")["available"], ledger.balances("M1")["frozen"]) == (600, 400)
        assert send("freeze", "100", reason="").status_code == 422  # a reason is needed
        assert send("unfreeze", "").status_code == 303  # blank: all frozen points
        assert (ledger.balances("M1")["available"], ledger.balances("M1")["frozen"]) == (1000, 0)
        nothing = send("unfreeze", "")
        assert nothing.status_code == 422 and "no frozen points" in nothing.text
    assert ledger.verify() == []


def test_a_member_is_restricted_and_lifted(app):
    seeded(app)
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator")
        key = forms(client.get("/console/members/M1").text)["restrict"]
        bad = client.post("/console/members/M1/restrict",
                          data={"csrf": csrf, "once": key, "kind": "freeze", "days": "-3", "reason": "farm"})
        assert bad.status_code == 422 and "at least 0" in bad.text
        ok = client.post("/console/members/M1/restrict", follow_redirects=False,
                         data={"csrf": csrf, "once": key, "kind": "freeze", "days": "30", "reason": "farm"})
        assert ok.status_code == 303
        with app.state.sessions() as s:
            [r] = s.scalars(select(MemberRestriction)).all()
        assert (r.kind, r.reason, r.status, r.until is not None) == ("freeze", "farm", "active", True)
        page = client.get("/console/members/M1").text
        assert f'action="/console/risk/restrictions/{r.id}/lift"' in page
        client.post(f"/console/risk/restrictions/{r.id}/lift", data={"csrf": csrf, "note": "cleared"})
        with app.state.sessions() as s:
            assert s.get(MemberRestriction, r.id).status == "lifted"


def test_roles_without_the_permission_see_no_form_and_are_refused(app):
    ledger = seeded(app)
    for role in ("auditor", "finance"):
        with TestClient(app) as client:
            csrf = console_as(client, app, role)
            page = client.get("/console/members/M1")
            assert page.status_code == 200 and forms(page.text) == {} and "/adjust" not in page.text
            for action in ("adjust", "freeze", "restrict"):
                refused = client.post(f"/console/members/M1/{action}",
                                      data={"csrf": csrf, "once": "k", "points": "5", "reason": "x", "kind": "freeze"})
                assert refused.status_code == 403, (role, action)
    with TestClient(app) as client:  # the right role, without the session's token
        console_as(client, app, "operator")
        assert client.post("/console/members/M1/adjust", data={"points": "5", "reason": "x"}).status_code == 403
    assert adjustments(app) == [] and ledger.balances("M1")["frozen"] == 0
