"""Maker-checker: on the member page an adjustment above the programme's threshold becomes a pending
request; only another person with points:approve approves it (posted once, audited under the member) or
rejects it (nothing posted); the maker cannot decide their own; a role without the permission sees no
form and gets 403."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.approvals.models import AdjustmentRequest
from jifen.db import run_in_transaction
from jifen.ledger.models import JournalEntry
from jifen.programs.service import get_program
from jifen.security.audit import AuditEntry
from tests.support.console_login import console_as, once_keys


def threshold(app, points: int) -> None:
    run_in_transaction(app.state.sessions, lambda s: setattr(get_program(s, "default"), "risk",
                                                             {"adjust_approval_above": points}))


def adjustments(app) -> list[tuple[int, str | None, str | None]]:
    with app.state.sessions() as s:
        return [(e.points, e.reference, e.actor) for e in s.scalars(
            select(JournalEntry).where(JournalEntry.type == "adjust").order_by(JournalEntry.id))]


def requests(app) -> list[tuple[int, str, str | None]]:
    with app.state.sessions() as s:
        return [(r.points, r.status, r.checker) for r in s.scalars(select(AdjustmentRequest).order_by(
            AdjustmentRequest.id))]


def adjust(client, csrf: str, points: str, reason: str):
    key = once_keys(client.get("/console/members/M1").text, "/console/members/M1/adjust")["/console/members/M1/adjust"]
    return client.post("/console/members/M1/adjust", data={"csrf": csrf, "once": key, "points": points,
                                                           "reason": reason}, follow_redirects=False)


def decision_keys(client) -> dict[str, str]:
    return once_keys(client.get("/console/approvals").text, "/console/approvals/")


def test_above_the_threshold_an_adjustment_waits_for_another_person(site):
    app, _ = site
    threshold(app, 500)
    with TestClient(app) as maker, TestClient(app) as checker, TestClient(app) as auditor:
        maker_csrf = console_as(maker, app, "operator", "maker")  # an operator may approve, but not their own
        small = adjust(maker, maker_csrf, "100", "late receipt")
        assert small.headers["location"] == "/console/members/M1?done=adjust"
        big = adjust(maker, maker_csrf, "800", "lost order SO-77")
        assert big.headers["location"] == "/console/members/M1?done=adjust_requested"
        assert [p for p, _, _ in adjustments(app)] == [100]  # the big one is not in the ledger
        assert requests(app) == [(800, "pending", None)]
        page = maker.get("/console/members/M1?done=adjust_requested").text
        assert "lost order SO-77" in page and "/console/approvals" in page

        # The maker sees their request but no decision forms, and a decision sent anyway is refused.
        assert decision_keys(maker) == {}
        own = maker.post("/console/approvals/1/approve", data={"csrf": maker_csrf, "once": "a" * 32})
        assert own.status_code == 409 and "another person" in own.text
        assert requests(app) == [(800, "pending", None)] and len(adjustments(app)) == 1

        # Another person approves: posted once, by the checker, referencing the request.
        checker_csrf = console_as(checker, app, "finance", "checker")
        keys = decision_keys(checker)
        assert set(keys) == {"/console/approvals/1/approve", "/console/approvals/1/reject"}
        sent = {"csrf": checker_csrf, "once": keys["/console/approvals/1/approve"]}
        done = checker.post("/console/approvals/1/approve", data=sent, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/console/approvals?done=approved"
        again = checker.post("/console/approvals/1/approve", data=sent, follow_redirects=False)  # a double click
        assert again.status_code == 303
        late = checker.post("/console/approvals/1/approve", data={"csrf": checker_csrf, "once": "b" * 32})
        assert late.status_code == 409 and "already approved" in late.text  # another tab: decided already
        reject_after = checker.post("/console/approvals/1/reject", data={"csrf": checker_csrf, "once": "c" * 32})
        assert reject_after.status_code == 409
        posted = adjustments(app)
        assert [(p, ref) for p, ref, _ in posted] == [(100, None), (800, "approval:1")]
        assert posted[1][2].endswith(":checker") and requests(app)[0][1:] == ("approved", posted[1][2])

        # A rejection posts nothing.
        adjust(maker, maker_csrf, "-600", "duplicate award")
        keys = decision_keys(checker)
        assert checker.post("/console/approvals/2/reject", data={"csrf": checker_csrf, "once": keys[
            "/console/approvals/2/reject"]}, follow_redirects=False).headers["location"].endswith("done=rejected")
        assert requests(app)[1][:2] == (-600, "rejected") and len(adjustments(app)) == 2

        # No permission: no nav link, no page, no decision.
        auditor_csrf = console_as(auditor, app, "auditor")
        assert 'href="/console/approvals"' not in auditor.get("/console").text
        assert auditor.get("/console/approvals").status_code == 403
        assert auditor.post("/console/approvals/2/approve", data={"csrf": auditor_csrf}).status_code == 403
    with app.state.sessions() as s:  # the approval is audited under the member it concerns
        line = s.scalars(select(AuditEntry).where(AuditEntry.path == "/console/approvals/1/approve",
                                                  AuditEntry.status == 303)).first()
        assert line is not None and (line.action, line.member_id) == ("adjust_approval", "M1")


def test_without_a_threshold_every_adjustment_posts_at_once(site):
    app, _ = site
    with TestClient(app) as client:
        csrf = console_as(client, app, "customer_service")
        assert adjust(client, csrf, "100000", "migration").headers["location"].endswith("done=adjust")
    assert requests(app) == [] and [p for p, _, _ in adjustments(app)] == [100000]


def test_a_bad_request_is_refused_and_nothing_waits(site):
    app, _ = site
    threshold(app, 500)
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator", "maker")
        refused = adjust(client, csrf, "900", "  ")
        assert refused.status_code == 422 and "reason" in refused.text
    assert requests(app) == []
