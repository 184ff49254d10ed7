"""An admin's console header (every link their role may follow, the search, the user, the languages and
sign-out) is one row at 1280 px in each language. Screenshots into JIFEN_SCREENSHOTS when set."""

from __future__ import annotations

from tests.support.browser import chromium_page, need_chromium, screenshots, serving, sign_in_page
from tests.support.console_login import PASSWORD, add_user


def test_an_admins_header_is_one_row_at_1280_px(site, tmp_path):
    need_chromium()
    app, _ = site
    admin = add_user(app, "admin", "admin")
    shots = screenshots(tmp_path)
    with serving(app) as base, chromium_page(1280, 700) as page:
        sign_in_page(page, base, admin, PASSWORD)
        for lang in ("zh-Hans", "zh-Hant", "en"):
            page.goto(f"{base}/console/rules?lang={lang}")
            assert page.locator("header > nav:not(.languages) a").count() == 13  # (the admin's: every page)
            # One row: every item of the header sits beside the brand, none below it.
            below = page.evaluate("""() => { const brand = document.querySelector('header .brand').getBoundingClientRect();
                return [...document.querySelectorAll('header > *')].filter((e) => e.getBoundingClientRect().top >= brand.bottom)
                  .map((e) => e.className || e.tagName); }""")
            assert below == [], lang
            assert page.locator("header .account").inner_text().startswith("admin")
            page.locator("header").screenshot(path=shots / f"console-header-admin-{lang}.png")
