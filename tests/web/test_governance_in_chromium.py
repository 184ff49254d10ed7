"""In Debian's Chromium: an operator's adjustment above the threshold waits; a finance user approves it and
the points post; an auditor filters the audit log down to that approval. Then the governance pages an
admin sees (API keys, webhooks, write-offs). Screenshots into JIFEN_SCREENSHOTS (docs/screenshots) when set."""

from __future__ import annotations

from jifen.db import run_in_transaction
from jifen.programs.service import get_program
from tests.conftest import Ledger
from tests.support.browser import chromium, need_chromium, screenshots, serving, sign_in_page
from tests.support.console_login import PASSWORD, add_user


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
        audit.select_option("select[name=action]", "approvals")
        audit.click("form.audit-filters button")
        audit.wait_for_url("**/console/audit?*action=approvals*")
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

        boss = as_user(admin)
        for path, name in (("/console/api-keys", "console-api-keys.png"), ("/console/webhooks", "console-webhooks.png"),
                           ("/console/mall/write-offs", "console-write-offs.png")):
            boss.goto(f"{base}{path}")
            assert boss.locator("h1").count() == 1
            boss.screenshot(path=shots / name, full_page=True)
