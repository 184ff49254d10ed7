"""The mall's coupon write-off log: which coupon, reward and member, who wrote it off (a till's API key or
a console user), where and when, newest first; a console write-off through the same service as the API
(once, refusals shown with nothing changed) for roles with coupons:redeem; the log for every role."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.mall.models import Coupon
from tests.conftest import api_key
from tests.support.console_login import console_as, once_keys

ROW = re.compile(r'<tr><td class="mono">(\w+)</td>.*?</tr>', re.S)


def coupons(client, app) -> list[str]:
    admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
    assert client.post("/v1/rewards", headers=admin | {"Idempotency-Key": "r1"}, json={
        "code": "c5", "name": "满50减5券", "kind": "coupon", "category": "优惠券", "points": 100,
        "coupon": {"threshold": 50, "discount": 5, "valid_days": 30}}).status_code == 201
    order = client.post("/v1/redemptions", headers=admin | {"Idempotency-Key": "o1"},
                        json={"member_id": "M1", "reward": "c5", "quantity": 3})
    assert order.status_code == 201, order.text
    return [c["code"] for c in order.json()["coupons"]]


def used(app) -> dict[str, tuple[str | None, str | None, str | None]]:
    with app.state.sessions() as s:
        return {c.code: (c.used_by, c.merchant, c.store) for c in s.scalars(select(Coupon).where(
            Coupon.used_at.is_not(None)))}


def test_write_offs_by_till_and_console_are_logged(site):
    app, _ = site
    with TestClient(app) as client:
        first, second, third = coupons(client, app)
        till = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        assert client.post(f"/v1/coupons/{first}/redeem", json={"merchant": "旗舰店", "store": "S001"},
                           headers=till | {"Idempotency-Key": "w1"}).status_code == 200
        csrf = console_as(client, app, "operator", "dianzhang")
        page = client.get("/console/mall/write-offs")
        once = once_keys(page.text, "/console/mall/write-offs")["/console/mall/write-offs"]
        sent = {"csrf": csrf, "once": once, "code": second.lower(), "merchant": "徐汇店", "store": ""}
        done = client.post("/console/mall/write-offs", data=sent, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/console/mall/write-offs?done=write_off"
        assert client.post("/console/mall/write-offs", data=sent, follow_redirects=False).status_code == 303  # once
        log = used(app)
        assert log[first] == ("apikey:2:pos", "旗舰店", "S001")
        assert log[second][0].endswith(":dianzhang") and log[second][1:] == ("徐汇店", None)
        # Refusals: used already, unknown, no merchant — shown, nothing changed.
        for code, merchant, message in [(first, "x", "already used"), ("NOPE", "x", "unknown coupon"),
                                        (third, " ", "name the merchant")]:
            key = once_keys(client.get("/console/mall/write-offs").text, "/console/mall/write-offs")[
                "/console/mall/write-offs"]
            refused = client.post("/console/mall/write-offs", data={"csrf": csrf, "once": key, "code": code,
                                                                    "merchant": merchant})
            assert refused.status_code == 422 and message in refused.text, code
        assert used(app) == log
        shown = client.get("/console/mall/write-offs").text
        assert [c for c in ROW.findall(shown)] == [second, first]  # newest first
        assert "dianzhang" in shown and "旗舰店" in shown and "S001" in shown and "满50减5券" in shown
        assert 'href="/console/mall/write-offs"' in client.get("/console/mall").text


def test_every_role_reads_the_log_and_tills_write_off(site):
    app, _ = site
    for role, writes in (("finance", False), ("customer_service", False), ("auditor", False), ("pos", True)):
        with TestClient(app) as client:
            csrf = console_as(client, app, role, f"u-{role.replace('_', '-')}")
            page = client.get("/console/mall/write-offs")
            assert page.status_code == 200, role
            assert ('action="/console/mall/write-offs"' in page.text) == writes, role
            sent = client.post("/console/mall/write-offs", data={"csrf": csrf, "code": "X", "merchant": "m"})
            assert sent.status_code == (422 if writes else 403), role  # (X is no coupon: refused, shown)
