"""The rule editor in Debian's Chromium: an operator edits a rule in the form, sees the server's check put
an error beside the field and take it away, simulates the draft (progress while it runs, then the diff per
rule) and publishes it, then sees the new version and the announcement members get. Screenshots into
JIFEN_SCREENSHOTS (docs/screenshots) when set."""

from __future__ import annotations

import datetime as dt
import threading

from jifen.web import rules_editor
from tests.support.browser import chromium_page, need_chromium, screenshots, serving, sign_in_page
from tests.support.console_login import PASSWORD
from tests.support.intake import two_recent_purchases

CONDITION = 'input[data-path="rules.1.condition"]'  # seed 001's big_order_bonus, the second rule


def test_an_operator_edits_simulates_and_publishes_a_rule(site, tmp_path, monkeypatch):
    need_chromium()
    app, user = site
    now = dt.datetime.now(dt.UTC)
    two_recent_purchases(app.state.sessions, now, "80.00")
    shots = screenshots(tmp_path)
    # The simulation waits once its events are counted until the page has shown that it is running.
    counted, release = threading.Event(), threading.Event()
    real = rules_editor.simulate

    def held(session, program, draft, start, end, progress=None):
        def report(done, total):
            progress(done, total)
            if done == 0:
                counted.set()
                release.wait(60)
        return real(session, program, draft, start, end, report)

    monkeypatch.setattr(rules_editor, "simulate", held)
    with serving(app) as base, chromium_page(1280, 1000) as page:
        sign_in_page(page, base, user, PASSWORD)
        page.goto(f"{base}/console/rules/draft?lang=zh-Hans")
        page.wait_for_selector("fieldset.rule")  # the form, built from the YAML in force
        assert page.locator("fieldset.rule").count() == 6 and page.input_value(CONDITION) == "event.amount > 100"

        page.fill(CONDITION, "event.amount >")
        error = page.locator('.field-error[data-for="rules.1.condition"]')
        error.wait_for()
        assert error.inner_text().startswith("Syntax error") and page.locator(CONDITION).get_attribute("class") == "mono invalid"
        page.screenshot(path=shots / "console-rules-form-error.png", full_page=False)
        page.fill(CONDITION, "event.amount > 50")
        error.wait_for(state="detached")
        page.wait_for_function("document.getElementById('check-state').textContent === '草稿无误'")
        page.fill('[data-path="rules.1.award.multiplier"]', "1.5")
        page.wait_for_function("document.querySelector('textarea[name=text]').value.includes('multiplier: 1.5')")

        page.click("button.tab[data-view=yaml]")  # the same draft, as the YAML that is saved
        yaml_text = page.input_value("textarea[name=text]")
        assert "condition: event.amount > 50" in yaml_text and "multiplier: 1.5" in yaml_text
        line = next(x for x in yaml_text.splitlines() if x.strip() == "multiplier: 1.5")
        page.fill("textarea[name=text]", yaml_text.replace(line, f"{line}\n{line.replace('multiplier: 1.5', 'fixed: 3')}"))
        page.locator("#gutter .bad").wait_for()  # the line with the problem is marked
        assert "exactly one of fixed, per_yuan, multiplier" in page.locator("#problems").inner_text()
        page.screenshot(path=shots / "console-rules-yaml-error.png", full_page=False)
        page.fill("textarea[name=text]", yaml_text)
        page.locator("#gutter .bad").wait_for(state="detached")
        page.click("button.tab[data-view=form]")
        assert page.input_value(CONDITION) == "event.amount > 50"  # the edits kept across the switch

        page.click("#simulate")
        counted.wait(60)
        running = page.locator("#sim-progress span")
        page.wait_for_function("document.querySelector('#sim-progress span').textContent.includes('0 / 2')")
        assert running.inner_text() == "已重放 0 / 2 个事件" and page.locator("#sim-result table").count() == 0
        page.locator("#simulation").screenshot(path=shots / "console-rules-simulating.png")
        release.set()
        page.locator("table.sim-rules").wait_for()
        assert running.inner_text() == "已重放 2 / 2 个事件"
        # big_order_bonus: ×1.1 on M2's ¥200 (20) → ×1.5 on ¥200 and ¥80 (100 + 40).
        bonus = page.locator('table.sim-rules tr[data-rule="big_order_bonus"]').inner_text().split("\t")
        assert bonus[1:] == ["20", "140", "+120", "+600.0%", "2"]
        page.locator("#simulation").screenshot(path=shots / "console-rules-simulated.png")

        page.click("#publish")
        page.wait_for_url("**/console/rules?published=2")
        notice = page.locator("#published")
        assert "已公布第 2 版" in notice.inner_text() and "提前 30 天公告" in notice.inner_text()
        assert "單筆滿100元加贈10% · × 1.5" in notice.inner_text()  # what members are told changes (its name as written)
        page.screenshot(path=shots / "console-rules-published.png", full_page=False)
        page.goto(f"{base}/p/default/rules")
        assert "單筆滿100元加贈10% · × 1.5" in page.locator("main").inner_text()


ENTRY_MULTIPLIER = 'input[data-path="tiers.levels.0.earn_multiplier"]'  # seed 001's entry tier, "normal"


def test_an_operator_changes_a_tier_multiplier_and_members_are_told(site, tmp_path):
    need_chromium()
    app, user = site
    now = dt.datetime.now(dt.UTC)
    two_recent_purchases(app.state.sessions, now, "80.00")
    shots = screenshots(tmp_path)
    with serving(app) as base, chromium_page(1280, 1000) as page:
        sign_in_page(page, base, user, PASSWORD)
        page.goto(f"{base}/console/rules/draft?lang=zh-Hans")
        page.wait_for_selector("section.tiers .tier")
        assert page.locator("section.tiers .tier").count() == 4 and page.input_value(ENTRY_MULTIPLIER) == ""  # (× 1)
        assert page.input_value('input[data-path="tiers.levels.2.earn_multiplier"]') == "1.3"

        page.fill(ENTRY_MULTIPLIER, "0")  # checked as it is typed, the error beside the field
        error = page.locator('.field-error[data-for="tiers.levels.0.earn_multiplier"]')
        error.wait_for()
        page.fill(ENTRY_MULTIPLIER, "2")
        error.wait_for(state="detached")
        page.wait_for_function("document.querySelector('textarea[name=text]').value.includes('earn_multiplier: 2')")
        page.locator("section.tiers").screenshot(path=shots / "console-rules-tiers-form.png")

        page.click("#simulate")
        page.locator("table.sim-rules").wait_for()
        # Both members are at the entry tier: × 2 adds their running total again (M2: 200 × 1.1 = 220, M1: 80).
        row = page.locator('table.sim-rules tr[data-rule="tier_bonus"]')
        assert row.get_attribute("class") == "changed" and row.inner_text().split("\t")[1:] == [
            "0", "300", "+300", "新增", "2"]

        page.click("#publish")
        page.wait_for_url("**/console/rules?published=2")
        notice = page.locator("#published")
        assert "等级调整" in notice.inner_text()
        assert "普通: 门槛 0 · 积分 × 1 → 门槛 0 · 积分 × 2" in notice.locator('[data-tier="normal"]').inner_text()
        page.screenshot(path=shots / "console-rules-tier-published.png", full_page=False)
        page.goto(f"{base}/p/default/rules")
        assert "积分 × 2" in page.locator('[data-tier="normal"]').inner_text()
