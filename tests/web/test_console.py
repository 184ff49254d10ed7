"""The operator console: sign-in, overview figures, member page with masked phone, both languages —
over HTTP, and rendered in Debian's Chromium (Playwright) where it is installed (always in CI)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.db import run_in_transaction
from jifen.members.models import Member
from jifen.security.audit import AuditEntry
from tests.support.browser import chromium_page, need_chromium, serving, sign_in_page
from tests.support.console_login import PASSWORD, console_as, csrf_of, sign_in
from tests.support.intake import configure, send_one


def test_console_needs_a_signed_in_user(site):
    app, user = site
    with TestClient(app) as client:
        r = client.get("/console", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login"
        bad = sign_in(client, user, "not-the-password")
        assert bad.status_code == 401 and "用户名或密码错误" in bad.text
        ok = sign_in(client, user)
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "xiaowang" in client.get("/console").text


def test_console_pages(site):
    app, user = site
    with TestClient(app) as client:
        sign_in(client, user)
        home = client.get("/console").text
        assert "流通积分" in home and "1,200" in home and "¥12.00" in home  # 1,500 − 300 at ¥0.01
        member = client.get("/console/members/M1").text
        assert "138****1234" in member and "13812341234" not in member and "SO-9" in member
        english = client.get("/console/members/M1?lang=en").text
        assert "Available" in english and "Ledger" in english
        assert client.get("/console/members/NOPE").status_code == 404
        assert client.get("/console/members?q=M2").status_code == 200


def test_rules_page_and_member_tier(site):
    app, user = site
    now = dt.datetime.now(dt.UTC)
    configure(app.state.sessions, now=now - dt.timedelta(days=1))
    send_one(app.state.sessions, "M2", amount="1200.50", order_id="SO-77", at=now - dt.timedelta(hours=1), now=now)
    with TestClient(app) as client:
        sign_in(client, user)
        rules = client.get("/console/rules").text
        assert "單筆滿100元加贈10%" in rules and "event.amount &gt; 100" in rules and "銀卡" in rules
        assert '<td class="num">1,200</td>' in rules and '<td class="num">120</td>' in rules  # issued, 30 days
        member = client.get("/console/members/M2").text
        assert "銀卡" in member and "¥3,799.50" in member  # ¥5,000 for gold less ¥1,200.50
        assert "purchase_base 1200" in member and "big_order_bonus 120" in member
        assert "Earn ×" in client.get("/console/rules?lang=en").text


def test_personal_data_is_masked_and_revealed_only_to_roles_that_may_see_it_with_a_trace(site):
    app, user = site
    run_in_transaction(app.state.sessions, lambda s: setattr(
        s.scalar(select(Member).where(Member.member_id == "M1")), "name", "王小明"))
    with TestClient(app) as operator:
        csrf = csrf_of(operator.get("/console").text) if sign_in(operator, user).status_code == 303 else ""
        page = operator.get("/console/members/M1").text
        assert "王**" in page and "王小明" not in page and "/reveal" not in page
        assert "王**" in operator.get("/console/members").text
        refused = operator.post("/console/members/M1/reveal", data={"csrf": csrf})
        assert refused.status_code == 403 and "13812341234" not in refused.text
    with TestClient(app) as service:
        csrf = console_as(service, app, "customer_service")
        page = service.get("/console/members/M1").text
        assert "138****1234" in page and 'action="/console/members/M1/reveal"' in page
        assert service.post("/console/members/M1/reveal", data={}).status_code == 403  # no CSRF token
        shown = service.post("/console/members/M1/reveal", data={"csrf": csrf})
        assert shown.status_code == 200 and "13812341234" in shown.text and "王小明" in shown.text
    with app.state.sessions() as s:
        looked = s.scalars(select(AuditEntry).where(AuditEntry.path == "/console/members/M1/reveal")).all()
    assert [(e.role, e.status) for e in looked] == [("operator", 403), ("customer_service", 403),
                                                    ("customer_service", 200)]


def test_console_renders_in_chromium(site, tmp_path):
    need_chromium()
    app, user = site
    with serving(app) as base, chromium_page() as page:
        sign_in_page(page, base, user, PASSWORD)
        kpis = page.locator(".kpi b").all_inner_texts()
        assert kpis[:2] == ["1,200", "¥12.00"]
        page.wait_for_function("document.querySelector('#chart-daily').data")  # the dashboard (test_dashboard.py)
        assert len(page.evaluate("document.querySelector('#chart-daily').data[0].x")) == 31
        page.screenshot(path=tmp_path / "overview.png", full_page=True)
        page.click("text=M1")
        assert page.locator("h1").inner_text().startswith("M1")


def test_published_rules_and_announced_changes(site):
    from tests.support.intake import SEED_001

    app, _ = site
    now = dt.datetime.now(dt.UTC)
    configure(app.state.sessions, now=now - dt.timedelta(days=1))
    rules = [r for r in SEED_001["rules"]["rules"] if r["code"] != "invite_friend"]
    rules[1] = rules[1] | {"award": {"multiplier": "1.2"}}
    rules.append({"code": "beauty", "name": "美妝1.5倍", "events": ["purchase"], "categories": ["美妝"],
                  "award": {"multiplier": "1.5"}})
    ahead = (now + dt.timedelta(days=31)).isoformat()
    configure(app.state.sessions, {"rules": {"effective_from": ahead, "note": "新年調整", "rules": rules}}, now=now)
    with TestClient(app) as client:  # no sign-in: this page is for members
        page = client.get("/p/default/rules")
        assert page.status_code == 200
        text = page.text
        assert "100 积分可抵 ¥1" in text and "每年 12 月 31 日" in text and "消費1元得1積分" in text
        assert "提前 31 天公告" in text or "提前 30 天公告" in text
        added, rest = text.split("<h3>新增</h3>")[1].split("<h3>调整</h3>")
        changed, withdrawn = rest.split("<h3>取消</h3>")
        assert "美妝1.5倍" in added and "單筆滿100元加贈10%" in changed and "× 1.2" in changed
        assert "邀請好友註冊50積分" in withdrawn
        assert client.get("/p/nope/rules").status_code == 404
        assert "points are worth ¥1" in client.get("/p/default/rules?lang=en").text


def test_rule_editor_validates_simulates_and_publishes(site):
    app, operator = site
    now = dt.datetime.now(dt.UTC)
    configure(app.state.sessions, now=now - dt.timedelta(days=2))
    send_one(app.state.sessions, "M2", amount="200.00", order_id="SO-1", at=now - dt.timedelta(hours=2), now=now)
    with TestClient(app) as client:
        sign_in(client, operator)
        form = client.get("/console/rules/draft").text
        token = csrf_of(form)
        assert "purchase_base" in form and "big_order_bonus" in form  # the rules in force, as YAML
        draft = "rules:\n- code: base\n  events: [purchase]\n  award: {per_yuan: 3}\n"
        when = (now + dt.timedelta(days=40)).strftime("%Y-%m-%dT%H:%M")
        bad = client.post("/console/rules/draft", data={"text": draft.replace("per_yuan: 3", "per_yuan: 3, fixed: 1"),
                                                        "effective": when, "action": "simulate", "csrf": token})
        assert bad.status_code == 422 and "exactly one of" in bad.text
        broken = client.post("/console/rules/draft", data={"text": "rules: [", "effective": when, "action": "simulate",
                                                           "csrf": token})
        assert broken.status_code == 422 and "not valid YAML" in broken.text
        sim = client.post("/console/rules/draft", data={"text": draft, "effective": when, "action": "simulate",
                                                        "csrf": token})
        assert sim.status_code == 200
        assert '<td class="num">220</td><td class="num">600</td><td class="num">+380</td>' in sim.text
        soon = (now + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
        warned = client.post("/console/rules/draft", data={"text": draft, "effective": soon, "action": "simulate",
                                                           "csrf": token})
        assert "只提前 2 天公告" in warned.text or "只提前 3 天公告" in warned.text
        empty = client.post("/console/rules/draft", data={"text": "rules: []", "effective": when, "action": "publish",
                                                          "csrf": token})
        assert empty.status_code == 422 and "no rules" in empty.text  # it would stop all earning
        done = client.post("/console/rules/draft", data={"text": draft, "effective": when, "note": "三倍",
                                                         "action": "publish", "csrf": token}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == "/console/rules?published=2"
        published = client.get(done.headers["location"]).text
        assert "已公布第 2 版" in published and "提前 39 天公告" in published  # and what members are told:
        assert "新增</h3><ul><li>base · 3 / ¥" in published and "三倍" in published
        assert "已公告 · 第 2 版" in client.get("/console/rules").text
    with TestClient(app) as client:
        token = console_as(client, app, "auditor")
        assert 'value="publish"' not in client.get("/console/rules/draft").text
        denied = client.post("/console/rules/draft", data={"text": draft, "effective": when, "action": "publish",
                                                           "csrf": token})
        assert denied.status_code == 403 and "已公告 · 第 3 版" not in client.get("/console/rules").text
