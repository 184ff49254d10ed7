"""An operator in Debian's Chromium: signs in, finds a member by phone, adjusts their points with a reason and
sees the entry on the member page; a reward is added and its stock changed in the mall. Screenshots into
JIFEN_SCREENSHOTS (docs/screenshots) when set."""

from __future__ import annotations

from tests.conftest import Ledger
from tests.support.browser import chromium_page, need_chromium, screenshots, serving, sign_in_page
from tests.support.console_login import PASSWORD


def test_an_operator_adjusts_points_and_stocks_the_mall(site, tmp_path):
    need_chromium()
    app, user = site  # M1 (phone 13812341234) holds 1,200 points
    shots = screenshots(tmp_path)
    with serving(app) as base, chromium_page() as page:
        sign_in_page(page, base, user, PASSWORD)
        page.fill("form.search input[name=q]", "13812341234")
        page.click("form.search button")
        assert page.locator("h1").inner_text().startswith("M1")
        adjust = page.locator('form[action="/console/members/M1/adjust"]')
        adjust.locator("input[name=points]").fill("-200")
        adjust.locator("input[name=reason]").fill("duplicate receipt SO-9")
        adjust.locator("button").click()
        page.wait_for_url("**/console/members/M1?done=adjust")
        assert page.locator("p.ok").count() == 1
        assert page.locator(".kpi b").first.inner_text() == "1,000"
        entry = page.locator("table.entries tr", has_text="duplicate receipt SO-9")
        assert entry.count() == 1 and "Adjustment" in entry.inner_text() and "200" in entry.inner_text()
        page.screenshot(path=shots / "console-member-adjusted.png", full_page=True)
        # A refusal stays on the page, with the form as it was.
        adjust = page.locator('form[action="/console/members/M1/adjust"]')
        adjust.locator("input[name=points]").fill("-99999")
        adjust.locator("input[name=reason]").fill("too much")
        adjust.locator("button").click()
        assert "not enough available points" in page.locator("p.error").inner_text()
        assert page.locator(".kpi b").first.inner_text() == "1,000"

        page.goto(f"{base}/console/mall")
        new = page.locator('form[action="/console/mall/rewards"]')
        for name, value in {"code": "mug", "name": "积分马克杯", "points": "500", "stock": "10", "value": "39.90"}.items():
            new.locator(f"input[name={name}]").fill(value)
        new.locator("select[name=kind]").select_option("physical")
        new.locator("button").click()
        page.wait_for_url("**/console/mall?done=reward_created")
        restock = page.locator('form[action="/console/mall/rewards/mug/stock"]')
        restock.locator("input[name=delta]").fill("+5")
        restock.locator("button").click()
        page.wait_for_url("**/console/mall?done=stock_changed")
        assert "15" in page.locator("tr", has_text="积分马克杯").first.inner_text()
        page.screenshot(path=shots / "console-mall.png", full_page=True)
        page.goto(f"{base}/console/members")
        page.screenshot(path=shots / "console-members.png", full_page=True)
    assert Ledger(app.state.sessions).balances("M1")["available"] == 1000
