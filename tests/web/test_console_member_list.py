"""The console's member list: tier and balance shown, filtered by tier and balance range, a page at a time;
a member found by id or by phone (its keyed hash); bad filters refused with the message shown."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from jifen.db import run_in_transaction
from jifen.ledger import operations as ops
from jifen.members.models import Member
from jifen.members.service import create_member
from jifen.programs.service import get_program
from jifen.web.member_list import PAGE_SIZE
from tests.conftest import Ledger, m
from tests.support.console_login import console_as
from tests.support.intake import configure

_ROW = re.compile(r'<tr><td><a href="/console/members/(\w+)">')


def listed(client, **params) -> list[str]:
    page = client.get("/console/members", params=params)
    assert page.status_code == 200, page.text[-400:]
    return _ROW.findall(page.text)


def test_the_list_filters_by_tier_and_balance_and_pages(app, factory):
    configure(factory)  # the demo programme's tiers
    ledger = Ledger(app.state.sessions)
    ids = [f"M{i:03d}" for i in range(PAGE_SIZE + 5)]
    ledger.add_members(*ids)
    for i, mid in enumerate(ids[:6]):
        ledger.run(lambda sc, s, mid=mid, i=i: ops.award(sc, m(sc, mid), 100 * (i + 1)))

    def promote(s):
        s.query(Member).filter(Member.member_id.in_(["M001", "M004"])).update({"tier": "gold"})

    run_in_transaction(app.state.sessions, promote)
    with TestClient(app) as client:
        console_as(client, app, "auditor")  # reading the list needs no more than members:read
        first = client.get("/console/members")
        assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
        assert len(listed(client)) == PAGE_SIZE and listed(client)[0] == ids[-1]  # newest first
        second = listed(client, page="2")
        assert second == list(reversed(ids[:5]))
        assert ">500<" in client.get("/console/members", params={"page": "2"}).text  # M004's balance
        assert listed(client, tier="gold") == ["M004", "M001"]
        assert 'selected>' in client.get("/console/members", params={"tier": "gold"}).text
        assert sorted(listed(client, low="300", high="500")) == ["M002", "M003", "M004"]
        assert listed(client, tier="gold", low="450") == ["M004"]
        gold = client.get("/console/members", params={"tier": "gold", "low": "450"}).text
        assert "M004" in gold and ">500<" in gold  # the balance column
        for bad, message in [({"low": "lots"}, "whole number"), ({"low": "9", "high": "3"}, "above the maximum"),
                             ({"page": "0"}, "at least 1")]:
            refused = client.get("/console/members", params=bad)
            assert refused.status_code == 422 and message in refused.text, bad


def test_a_member_is_found_by_id_or_phone(app):
    run_in_transaction(app.state.sessions, lambda s: create_member(s, get_program(s, "default"), "P1",
                                                                   phone="13912345678"))
    with TestClient(app) as client:
        console_as(client, app, "operator")
        by_id = client.get("/console/members", params={"q": "P1"})
        by_phone = client.get("/console/members", params={"q": "13912345678"})
        assert by_id.status_code == by_phone.status_code == 200
        assert "<h1>P1" in by_phone.text and "139****5678" in by_phone.text
        missing = client.get("/console/members", params={"q": "13900000000"})
        assert missing.status_code == 404 and "13900000000" in missing.text
