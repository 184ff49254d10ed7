"""The member centre in Debian's Chromium at 375 px: a reward redeemed through the confirmation step, the
three languages switched by their links and remembered, and no page of the member centre or the console
showing a known code raw in any of them."""

from __future__ import annotations

import re

from jifen.web.i18n import LANGUAGES, NAMES
from tests.support.browser import chromium, need_chromium, serving
from tests.support.console_login import PASSWORD
from tests.support.demo_site import member_token, shopper
from tests.support.raw_codes import raw_codes, shown_text

PHONE = {"width": 375, "height": 812}
TABS = ["/m/", "/m/mall", "/m/check-in", "/m/messages"]
LINKS = ["/m/history", "/m/orders", "/m/tasks", "/m/invite", "/m/gifts", "/m/tier"]
CONSOLE_NAV = ["/console", "/console/members", "/console/rules", "/console/mall", "/console/notifications",
               "/console/risk", "/console/users"]


def points(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def fits(page) -> bool:
    """Nothing wider than the phone: no sideways scrolling."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_member_redeems_a_reward_on_a_phone(demo):
    need_chromium()
    member_id = shopper(demo)
    with serving(demo) as base, chromium() as browser:
        page = browser.new_page(viewport=PHONE, locale="zh-CN")
        page.goto(f"{base}/m/enter?token={member_token(demo, member_id)}")
        page.wait_for_url(f"{base}/m/")
        before = points(page.get_by_test_id("balance").inner_text())
        assert "过期" in page.get_by_test_id("expiry").inner_text() and fits(page)
        page.click(".tabs >> text=积分商城")
        page.wait_for_url("**/m/mall")
        assert fits(page)
        affordable = [a for a in page.locator("a[data-reward]").all()
                      if points(a.locator(".price").inner_text().split()[0]) <= before]
        assert affordable, "the demo shopper can afford something"
        name = affordable[0].locator(".name").inner_text()
        price = points(affordable[0].locator(".price").inner_text().split()[0])
        affordable[0].click()
        page.wait_for_url("**/m/mall/*")
        assert f"兑换后剩余 {before - price:,} 积分" in page.inner_text("main") and fits(page)
        if page.locator("input[name=line]").count():  # goods that ship ask where to
            page.fill("input[name=recipient]", "王小明")
            page.fill("input[name=phone]", "13800001111")
            page.fill("input[name=line]", "上海市浦东新区世纪大道100号")
        page.get_by_test_id("confirm").click()
        page.wait_for_url(re.compile(r".*/m/orders/\d+$"))
        order = page.get_by_test_id("order").inner_text()
        assert name in order and ("兑换成功" in order or "审核中" in order) and fits(page)
        page.goto(f"{base}/m/")
        assert points(page.get_by_test_id("balance").inner_text()) == before - price


def _no_raw_codes(page, lang: str, path: str) -> None:
    assert page.get_attribute("html", "lang") == lang, path
    assert raw_codes(shown_text(page.content()), lang) == set(), (lang, path)


def test_three_languages_switched_remembered_and_fully_labelled(demo):
    need_chromium()
    with serving(demo) as base, chromium() as browser:
        context = browser.new_context(locale="en-US")  # one browser: the member centre and console share cookies
        phone, desk = context.new_page(), context.new_page()
        phone.set_viewport_size(PHONE)
        desk.set_viewport_size({"width": 1280, "height": 900})
        phone.goto(f"{base}/m/enter?token={member_token(demo, shopper(demo))}")
        phone.wait_for_url(f"{base}/m/")
        assert phone.get_attribute("html", "lang") == "en"  # the browser's language, until one is chosen
        desk.goto(f"{base}/console/login")
        desk.fill("input[name=username]", "boss")
        desk.fill("input[name=password]", PASSWORD)
        desk.click("form.login button")
        desk.wait_for_url(f"{base}/console")
        for lang in LANGUAGES:
            phone.goto(f"{base}/m/")
            if phone.get_attribute("html", "lang") != lang:
                phone.click(f".languages a[lang={lang}]")  # the switch on the page itself
                phone.wait_for_function(f"document.documentElement.lang === '{lang}'")
            for path in TABS + LINKS:
                phone.goto(base + path)  # no ?lang=: the choice is remembered
                _no_raw_codes(phone, lang, path)
                assert fits(phone), (lang, path)
            desk.goto(f"{base}/console")  # the same cookie: the console follows the member centre's choice
            chosen = desk.locator(f".languages b[lang={lang}]")  # (the console header names it short, in full on hover)
            assert chosen.get_attribute("title") == NAMES[lang]
            for path in CONSOLE_NAV:
                desk.click(f"header nav a[href='{path}']")
                desk.wait_for_url(base + path)
                _no_raw_codes(desk, lang, path)
