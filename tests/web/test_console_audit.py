"""The console's audit log: newest first, filtered by actor, kind of action, member and date range, a page
at a time below the page above (keyed on seq); bad filters refused with a message; for admin and auditor
only. The search columns are checked by `verify` like the rest of a line."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from jifen.db import run_in_transaction
from jifen.programs.service import get_program
from jifen.security import audit
from jifen.security.audit import AuditEntry
from tests.conftest import api_key
from tests.support.console_login import console_as

SEQ = re.compile(r'<td class="num mono">(\d+)</td>')


def shown(client, **params) -> list[int]:
    r = client.get("/console/audit", params=params)
    assert r.status_code == 200, r.text[-400:]
    return [int(x) for x in SEQ.findall(r.text)]


def lines(app, **where) -> list[int]:
    with app.state.sessions() as s:
        q = select(AuditEntry.seq).order_by(AuditEntry.seq.desc())
        for column, value in where.items():
            q = q.where(getattr(AuditEntry, column) == value)
        return list(s.scalars(q))


def test_filters_narrow_the_log_newest_first(site):
    app, _ = site
    with TestClient(app) as client, TestClient(app) as auditor:
        key = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert client.post("/v1/members", json={"member_id": "alice"}, headers=key | {"Idempotency-Key": "1"}
                           ).status_code == 201
        assert client.post("/v1/points/award", json={"member_id": "alice", "points": 5},
                           headers=key | {"Idempotency-Key": "2"}).status_code == 200
        csrf = console_as(client, app, "operator", "xiaoli")
        page = client.get("/console/members/M1").text
        once = re.search(r'action="/console/members/M1/adjust".*?name="once" value="(\w+)"', page, re.S).group(1)
        client.post("/console/members/M1/adjust", data={"csrf": csrf, "once": once, "points": "7", "reason": "x"})
        console_as(auditor, app, "auditor", "shenji")
        everything = shown(auditor)
        assert everything == lines(app) and everything == sorted(everything, reverse=True) and len(everything) >= 5
        with app.state.sessions() as s:
            key_actor = s.scalar(select(AuditEntry.actor).where(AuditEntry.path == "/v1/members"))
            operator = s.scalar(select(AuditEntry.actor).where(AuditEntry.path == "/console/members/M1/adjust"))
        assert shown(auditor, actor=key_actor) == lines(app, actor=key_actor) and len(lines(app, actor=key_actor)) == 2
        assert shown(auditor, action="points_moved") == lines(app, action="points_moved")
        assert len(lines(app, action="points_moved")) == 2  # the award by API and the adjustment on the member page
        assert shown(auditor, member="M1") == lines(app, member_id="M1") == lines(app, path="/console/members/M1/adjust")
        assert shown(auditor, actor=operator, action="sign_in_access") == lines(app, actor=operator, path="/console/login")
        today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
        assert shown(auditor, **{"from": today.isoformat(), "to": today.isoformat()}) == everything
        assert shown(auditor, **{"from": (today + dt.timedelta(days=1)).isoformat()}) == []
        assert shown(auditor, **{"to": (today - dt.timedelta(days=1)).isoformat()}) == []
        for params, message in [({"from": "yesterday"}, "must be a date"), ({"action": "drop_tables"}, "unknown kind"),
                                ({"from": "2026-12-03", "to": "2026-12-01"}, "after the end"),
                                ({"before": "x"}, "whole number")]:
            refused = auditor.get("/console/audit", params=params)
            assert refused.status_code == 422 and message in refused.text, params
        labelled = auditor.get("/console/audit", params={"lang": "en"}).text
        assert "Points" in labelled and "Sign-in and accounts" in labelled and "API key" in labelled


def test_pages_follow_each_other_without_overlap(site):
    app, _ = site

    def many(s):
        program_id = get_program(s, "default").id
        audit.append_many(s, [{"program_id": program_id, "actor": "apikey:9:till", "role": "pos", "method": "POST",
                               "path": f"/v1/coupons/C{n}/redeem", "status": 200, "detail": {}} for n in range(120)])

    run_in_transaction(app.state.sessions, many)
    with TestClient(app) as auditor:
        console_as(auditor, app, "auditor")
        seen, before = [], None
        while True:
            r = auditor.get("/console/audit", params={"action": "coupon_write_off"} | ({"before": before} if before else {}))
            page = [int(x) for x in SEQ.findall(r.text)]
            seen += page
            older = re.search(r'href="/console/audit\?([^"]*)" rel="next"', r.text)
            if not older:
                break
            assert len(page) == 50
            before = re.search(r"before=(\d+)", older.group(1)).group(1)
        assert seen == lines(app, action="coupon_write_off") and len(seen) == 120


def test_only_admin_and_auditor_read_it(site):
    app, _ = site
    for role, status in (("operator", 403), ("finance", 403), ("customer_service", 403), ("admin", 200)):
        with TestClient(app) as client:
            console_as(client, app, role, f"u-{role.replace('_', '-')}")
            assert client.get("/console/audit").status_code == status, role
            assert ('href="/console/audit"' in client.get("/console").text) == (status == 200), role


def test_verify_finds_a_search_column_edited(site):
    app, _ = site
    with TestClient(app) as client:
        console_as(client, app, "operator", "xiaoli")  # the sign-in is a line
    with app.state.sessions() as s:
        assert audit.verify(s) == []
    with app.state.sessions() as s, s.begin():
        s.execute(text("UPDATE audit_log SET member_id = 'M2' WHERE seq = 1"))  # hide it under another member
    with app.state.sessions() as s:
        assert audit.verify(s) == ["line 1: search keys do not match the line"]
