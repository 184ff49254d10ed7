"""In Debian's Chromium: an operator's adjustment above the threshold waits; a finance user approves it and
the points post; an auditor filters the audit log down to that approval. Then an admin makes an API key (its
secret shown once) that a till writes coupons off with, and a webhook endpoint whose dead delivery is replayed.
Screenshots into JIFEN_SCREENSHOTS (docs/screenshots) when set."""

from __future__ import annotations

import json
import urllib.request

from sqlalchemy import select, update

from jifen.db import run_in_transaction, utcnow
from jifen.ledger import operations as ops
from jifen.notify import dispatcher
from jifen.notify.models import Delivery
from jifen.programs.service import get_program
from tests.conftest import Ledger, api_key, m
from tests.support.browser import chromium, need_chromium, screenshots, serving, sign_in_page
from tests.support.console_login import PASSWORD, add_user


def post(url: str, headers: dict, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers=headers | {"content-type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return answer.status, json.loads(answer.read())


def test_an_approval_and_the_audit_log_filter(site, tmp_path):
    need_chromium()
    app, operator = site  # M1 holds 1,200 points
    run_in_transaction(app.state.sessions, lambda s: setattr(get_program(s, "default"), "risk",
                                                             {"adjust_approval_above": 500}))
    checker, auditor, admin = (add_user(app, role, name) for role, name in
                               (("finance", "caiwu"), ("auditor", "shenji"), ("admin", "boss")))
    shots = screenshots(tmp_path)
    with serving(app) as base, chromium() as browser:
        def as_user(username):
            page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
            sign_in_page(page, base, username, PASSWORD)
            return page

        maker = as_user(operator)
        maker.goto(f"{base}/console/members/M1")
        adjust = maker.locator('form[action="/console/members/M1/adjust"]')
        adjust.locator("input[name=points]").fill("800")
        adjust.locator("input[name=reason]").fill("丢单补录 SO-77")
        adjust.locator("button").click()
        maker.wait_for_url("**/console/members/M1?done=adjust_requested")
        assert "已提交他人审批" in maker.locator("p.ok").inner_text()
        assert maker.locator(".kpi b").first.inner_text() == "1,200"  # nothing posted yet
        maker.goto(f"{base}/console/approvals")
        assert maker.locator("table.pending tr", has_text="SO-77").locator("button").count() == 0  # not their own

        finance = as_user(checker)
        finance.goto(f"{base}/console/approvals")
        finance.screenshot(path=shots / "console-approvals-pending.png", full_page=True)
        finance.locator("table.pending tr", has_text="SO-77").locator("button", has_text="通过").click()
        finance.wait_for_url("**/console/approvals?done=approved")
        decided = finance.locator("table.decided tr", has_text="SO-77").inner_text()
        assert "已通过" in decided and "caiwu" in decided and "xiaowang" in decided
        finance.goto(f"{base}/console/members/M1")
        assert finance.locator(".kpi b").first.inner_text() == "2,000"
        assert Ledger(app.state.sessions).balances("M1")["available"] == 2000

        audit = as_user(auditor)
        audit.goto(f"{base}/console/audit")
        everything = audit.locator("table.audit tbody tr").count()
        audit.select_option("select[name=action]", "adjust_approval")
        audit.click("form.audit-filters button")
        audit.wait_for_url("**/console/audit?*action=adjust_approval*")
        rows = audit.locator("table.audit tbody tr")
        assert rows.count() == 1 < everything
        assert "调整审批" in rows.inner_text() and "caiwu" in rows.inner_text() and "M1" in rows.inner_text()
        audit.fill("input[name=member]", "M1")
        audit.select_option("select[name=action]", "")
        audit.click("form.audit-filters button")
        audit.wait_for_url("**/console/audit?*member=M1*")
        paths = audit.locator("table.audit tbody tr").all_inner_texts()
        assert len(paths) == 2 and "/console/members/M1/adjust" in paths[1] and "/approve" in paths[0]
        audit.screenshot(path=shots / "console-audit-log.png", full_page=True)

        # The admin's governance pages, each with something on it.
        boss = as_user(admin)
        boss.goto(f"{base}/console/api-keys")
        boss.fill("form.newuser input[name=name]", "门店收银 07")
        boss.click("form.newuser button")
        secret = boss.locator("#secret").inner_text()
        assert secret.startswith("jf_")
        boss.screenshot(path=shots / "console-api-keys.png", full_page=True)
        till = {"Authorization": f"Bearer {secret}"}
        admin_key = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert post(f"{base}/v1/rewards", admin_key | {"Idempotency-Key": "r1"}, {
            "code": "c5", "name": "满50减5券", "kind": "coupon", "category": "优惠券", "points": 100,
            "coupon": {"threshold": 50, "discount": 5, "valid_days": 30}})[0] == 201
        _, order = post(f"{base}/v1/redemptions", admin_key | {"Idempotency-Key": "o1"},
                        {"member_id": "M1", "reward": "c5", "quantity": 2})
        for n, coupon in enumerate(order["coupons"]):
            assert post(f"{base}/v1/coupons/{coupon['code']}/redeem", till | {"Idempotency-Key": f"w{n}"},
                        {"merchant": "徐汇旗舰店", "store": f"S00{n + 1}"})[0] == 200
        boss.goto(f"{base}/console/mall/write-offs")
        assert boss.locator("table.write-offs tbody tr", has_text="门店收银 07").count() == 2
        boss.screenshot(path=shots / "console-write-offs.png", full_page=True)

        boss.goto(f"{base}/console/webhooks")
        boss.fill("form.newuser input[name=url]", "https://crm.example.test/jifen")
        boss.fill("form.newuser input[name=topics]", "points.awarded, points.adjusted, points.spent")
        boss.click("form.newuser button")
        assert boss.locator("#secret").inner_text().startswith("whsec_")
        Ledger(app.state.sessions).run(lambda sc, s: ops.award(sc, m(sc, "M2"), 30, reference="SO-88"))
        dispatcher.fan_out(app.state.sessions)
        with app.state.sessions() as s, s.begin():  # one refused by the receiver until its attempts ran out
            first = s.scalar(select(Delivery.id).where(Delivery.channel == "webhook").order_by(Delivery.id))
            s.execute(update(Delivery).where(Delivery.id == first).values(
                status="dead", attempts=8, last_error="HTTP 502 from https://crm.example.test/jifen"))
            s.execute(update(Delivery).where(Delivery.channel == "webhook", Delivery.id != first).values(
                status="delivered", attempts=1, delivered_at=utcnow()))
        boss.goto(f"{base}/console/webhooks")
        boss.screenshot(path=shots / "console-webhooks.png", full_page=True)
        boss.click("table.endpoints a.mono")
        boss.locator(f'form[action$="/deliveries/{first}/replay"] button').click()
        boss.wait_for_url("**?done=replay")
        assert "待发送" in boss.locator("table.deliveries tr", has_text=f"jd_{first}").inner_text()
        boss.screenshot(path=shots / "console-webhook-log.png", full_page=True)
