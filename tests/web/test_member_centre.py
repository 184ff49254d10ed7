"""The member centre (/m/): entry with a member token, balance and expiry, history filters, the mall's
confirmation step and idempotent redemption, check-in, tasks, invite code, gifts and red packets, messages,
languages — each action through the services, bad input refused with nothing changed."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jifen.db import run_in_transaction, utcnow
from jifen.demo import add_catalogue
from jifen.engagement.tasks import create_task
from jifen.ledger import operations as ops
from jifen.ledger.models import Lot
from jifen.mall.models import Redemption
from jifen.members.models import Member
from jifen.notify.models import InboxItem
from jifen.programs.service import get_program
from jifen.security import member_tokens
from jifen.web.i18n import translator
from tests.conftest import Ledger, m
from tests.support.console_login import csrf_of
from tests.support.intake import configure

_KEY = re.compile(r'name="key" value="([^"]*)"')


@pytest.fixture
def centre(app):
    now = utcnow()
    configure(app.state.sessions, now=now - dt.timedelta(days=1))
    ledger = Ledger(app.state.sessions, now=now)
    ledger.add_members("M1", "M2")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "M1"), 1500, reference="SO-9"))
    ledger.run(lambda sc, s: ops.spend(sc, m(sc, "M1"), 300, reference="POS-1"))
    run_in_transaction(app.state.sessions, lambda s: add_catalogue(s, get_program(s, "default"),
                                                                   now - dt.timedelta(days=1)))
    return app, ledger


def token(app, member_id: str, at: dt.datetime | None = None) -> str:
    with app.state.sessions() as s:
        program_id = get_program(s, "default").id
    return member_tokens.issue(program_id, member_id, at or utcnow())["token"]


def enter(client: TestClient, app, member_id: str = "M1") -> str:
    """Come in as the app does; returns the session's CSRF token."""
    r = client.get("/m/enter", params={"token": token(app, member_id)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/m/"
    return csrf_of(client.get("/m/").text)


def key_of(html: str) -> str:
    found = _KEY.search(html)
    assert found, "no idempotency key on the form"
    return found.group(1)


def available(ledger: Ledger, member_id: str = "M1") -> int:
    return ledger.balances(member_id)["available"]


def redemptions(app) -> int:
    with app.state.sessions() as s:
        return s.scalar(select(func.count()).select_from(Redemption))


def test_a_member_token_is_exchanged_for_a_session_cookie(centre):
    app, _ = centre
    with TestClient(app) as client:
        assert client.get("/m/", follow_redirects=False).headers["location"] == "/m/enter"
        assert client.get("/m/enter").status_code == 401
        for bad in ("not.a.token", token(app, "M1", utcnow() - dt.timedelta(hours=1)), "jk_live_not_a_jwt"):
            page = client.get("/m/enter", params={"token": bad}, follow_redirects=False)
            assert page.status_code == 401 and "请从品牌 APP 进入会员中心" in page.text and "set-cookie" not in page.headers
        r = client.get("/m/enter", params={"token": token(app, "M1")}, follow_redirects=False)
        cookie = r.headers["set-cookie"].lower()
        assert r.status_code == 303 and "httponly" in cookie and "path=/m" in cookie and "samesite=lax" in cookie
        assert r.headers["referrer-policy"] == "no-referrer"
        home = client.get("/m/").text
        assert "M1" in home
        left = client.post("/m/leave", data={"csrf": csrf_of(home)}, follow_redirects=False)
        assert left.status_code == 303 and 'jifen_member=""' in left.headers["set-cookie"]
        assert client.get("/m/", follow_redirects=False).headers["location"] == "/m/enter"
        client.get("/m/enter", params={"token": token(app, "M1")})
        session = client.cookies.get("jifen_member")
        # the cookie opens the member centre only: the API refuses it as a bearer token
        assert client.get("/v1/members/M1/balance", headers={"Authorization": f"Bearer {session}"}).status_code == 401
    with TestClient(app) as forger:
        forger.cookies.set("jifen_member", session[:-2] + ("AA" if not session.endswith("AA") else "BB"))
        assert forger.get("/m/", follow_redirects=False).headers["location"] == "/m/enter"


def test_home_states_the_balance_the_next_expiry_and_what_it_buys(centre):
    app, _ = centre
    with app.state.sessions() as s:
        ends = s.scalar(select(Lot.expires_at).join(Member, Member.id == Lot.member_pk).where(Member.member_id == "M1"))
    # the last day the points can be used: a lot ending at midnight is dated the day before
    expires = (ends - dt.timedelta(microseconds=1)).astimezone(ZoneInfo("Asia/Shanghai")).date()
    with TestClient(app) as client:
        enter(client, app)
        home = client.get("/m/").text
        assert '<p class="balance" data-testid="balance">1,200</p>' in home and "约值 ¥12.00" in home
        assert f"1,200 积分将于 {expires.year}年{expires.month}月{expires.day}日 过期" in home
        # seed 001's reminder rewards: the dearest that 1,200 points pay for is the ¥5 coupon
        assert "您有 1,200 积分即将过期, 可兑换价值 ¥5.00 的" in home
        english = client.get("/m/?lang=en").text
        assert f"1,200 points expire on {expires:%b} {expires.day}, {expires.year}" in english
        assert "Your 1,200 expiring points can buy" in english and "worth ¥5.00" in english


def test_history_filters_what_was_earned_and_spent(centre):
    app, _ = centre
    with TestClient(app) as client:
        enter(client, app)
        every = client.get("/m/history").text
        assert "+1,500" in every and "-300" in every and "获得" in every and "使用" in every
        earned = client.get("/m/history?kind=earned").text
        assert "+1,500" in earned and "-300" not in earned
        spent = client.get("/m/history?kind=spent&days=30").text
        assert "-300" in spent and "+1,500" not in spent
        bad = client.get("/m/history?kind=everything")
        assert bad.status_code == 422 and "输入有误" in bad.text


def test_redeeming_takes_a_confirmation_and_happens_once(centre):
    app, ledger = centre
    with TestClient(app) as client:
        csrf = enter(client, app)
        mall = client.get("/m/mall").text
        assert 'href="/m/mall/c50"' in mall and "500 积分" in mall and "优惠券" in mall
        confirm = client.get("/m/mall/c50").text
        assert "兑换后剩余 700 积分" in confirm and "确认兑换" in confirm
        key = key_of(confirm)
        stale = client.post("/m/mall/c50", data={"key": key, "csrf": "not-it"})
        assert stale.status_code == 403 and "表单已过期" in stale.text
        assert available(ledger) == 1200 and redemptions(app) == 0
        placed = client.post("/m/mall/c50", data={"key": key, "csrf": csrf}, follow_redirects=False)
        assert placed.status_code == 303 and placed.headers["location"].startswith("/m/orders/")
        order = client.get(placed.headers["location"]).text
        assert "兑换成功" in order and "券码" in order
        assert available(ledger) == 700 and redemptions(app) == 1
        again = client.post("/m/mall/c50", data={"key": key, "csrf": csrf}, follow_redirects=False)
        assert again.headers["location"] == placed.headers["location"]  # a double tap replays the first answer
        assert available(ledger) == 700 and redemptions(app) == 1
        oven = client.get("/m/mall/oven").text
        assert "还差 8,200 积分" in oven
        short = client.post("/m/mall/oven", data={"key": key_of(oven), "csrf": csrf, "recipient": "王小明",
                                                  "phone": "13800001111", "line": "上海市浦东新区世纪大道100号"})
        assert short.status_code == 409 and "积分不足" in short.text
        assert available(ledger) == 700 and redemptions(app) == 1
        listed = client.get("/m/orders").text
        with app.state.sessions() as s:
            status = s.scalar(select(Redemption.status))
        label = translator("zh-Hans").code("order", status)
        assert placed.headers["location"] in listed and "满50减5 优惠券" in listed and f">{label}<" in listed
        assert f">{status}<" not in listed
        assert client.get("/m/mall/nope").status_code == 404


def test_an_order_of_another_member_is_not_found(centre):
    app, _ = centre
    with TestClient(app) as first:
        csrf = enter(first, app)
        location = first.post("/m/mall/c50", data={"key": key_of(first.get("/m/mall/c50").text), "csrf": csrf},
                              follow_redirects=False).headers["location"]
    with TestClient(app) as second:
        enter(second, app, "M2")
        assert second.get(location).status_code == 404


def test_check_in_once_a_day_with_the_calendar(centre):
    app, ledger = centre
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()
    with TestClient(app) as client:
        csrf = enter(client, app)
        page = client.get("/m/check-in").text
        assert "已连续签到 0 天" in page and f"{today.year}年{today.month}月" in page
        done = client.post("/m/check-in", data={"key": key_of(page), "csrf": csrf})
        assert done.status_code == 200 and "签到成功, 获得 5 积分" in done.text and "已连续签到 1 天" in done.text
        assert re.search(rf'<td class="in today">{today.day}</td>', done.text)
        assert available(ledger) == 1205
        assert "获得</b> · 签到" in client.get("/m/history").text  # the entry names the event it was for
        twice = client.post("/m/check-in", data={"key": "another-key-123", "csrf": csrf})
        assert twice.status_code == 409 and "今天已签到" in twice.text and available(ledger) == 1205
        previous = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        assert f'href="?month={previous}"' in page and "?month=" + f"{today:%Y-%m}" not in page  # no future months
        earlier = client.get(f"/m/check-in?month={previous}")
        assert earlier.status_code == 200 and 'class="in' not in earlier.text  # checked in this month only
        assert client.get("/m/check-in?month=2026-13").status_code == 422


def test_tasks_invite_code_and_messages(centre):
    app, _ = centre
    def setup(s):
        create_task(s, get_program(s, "default"), {"code": "shop3", "name": "本周购物 3 次", "period": "weekly",
                                                    "events": ["purchase"], "target": 3, "points": 30})
        member = s.scalar(select(Member).where(Member.member_id == "M1"))
        other = s.scalar(select(Member).where(Member.member_id == "M2"))
        s.add_all([InboxItem(member_pk=member.id, delivery_id=1, topic="points.expiring", title="积分即将过期",
                             body="您有 1,200 积分即将过期"),
                   InboxItem(member_pk=other.id, delivery_id=2, topic="x", title="给 M2 的消息", body="")])
    run_in_transaction(app.state.sessions, setup)
    with TestClient(app) as client:
        csrf = enter(client, app)
        tasks = client.get("/m/tasks").text
        assert "本周购物 3 次" in tasks and "0 / 3" in tasks and "每周" in tasks and "奖励 30 积分" in tasks
        invite = client.get("/m/invite").text
        assert "获取我的邀请码" in invite
        client.post("/m/invite", data={"key": key_of(invite), "csrf": csrf})
        code = re.search(r'data-testid="invite-code">([A-Z0-9]{8})<', client.get("/m/invite").text).group(1)
        client.post("/m/invite", data={"key": "a-second-key", "csrf": csrf})
        assert code in client.get("/m/invite").text  # made on first ask, the same after
        inbox = client.get("/m/messages").text
        assert "积分即将过期" in inbox and "给 M2 的消息" not in inbox and "1 条未读" not in inbox
        assert '<b class="badge">1</b>' in client.get("/m/").text
        with app.state.sessions() as s:
            mine, theirs = s.scalars(select(InboxItem.id).order_by(InboxItem.id)).all()
        assert client.post(f"/m/messages/{theirs}/read", data={"key": "k-theirs-1", "csrf": csrf}).status_code == 404
        client.post(f"/m/messages/{mine}/read", data={"key": key_of(inbox), "csrf": csrf})
        with app.state.sessions() as s:
            assert [i.read_at is not None for i in s.scalars(select(InboxItem).order_by(InboxItem.id))] == [True, False]


def test_gifts_and_red_packets(centre):
    app, ledger = centre
    with TestClient(app) as giver, TestClient(app) as friend:
        csrf = enter(giver, app)
        page = giver.get("/m/gifts").text
        gave = giver.post("/m/gifts", data={"key": key_of(page) + "g", "csrf": csrf, "friend": "M2", "points": 100})
        assert "已转赠 100 积分" in gave.text
        assert (available(ledger, "M1"), available(ledger, "M2")) == (1100, 100)
        nobody = giver.post("/m/gifts", data={"key": "k-nobody-1", "csrf": csrf, "friend": "NOPE", "points": 100})
        assert nobody.status_code == 404 and "找不到这位会员" in nobody.text and available(ledger, "M1") == 1100
        too_many = giver.post("/m/gifts", data={"key": "k-too-many", "csrf": csrf, "friend": "M2", "points": 10**9})
        assert too_many.status_code == 422 and "输入有误" in too_many.text and available(ledger, "M1") == 1100
        sent = giver.post("/m/red-packets", data={"key": "k-packet-1", "csrf": csrf, "points": 300, "shares": 3,
                                                  "split": "equal"}, follow_redirects=False)
        packet = int(sent.headers["location"].split("sent=")[1])
        assert available(ledger, "M1") == 800
        own = giver.post("/m/red-packets/claim", data={"key": "k-own-claim", "csrf": csrf, "packet": packet})
        assert own.status_code == 409 and "不能领取自己的红包" in own.text
        friend_csrf = enter(friend, app, "M2")
        got = friend.post("/m/red-packets/claim", data={"key": "k-claim-1", "csrf": friend_csrf, "packet": packet})
        assert "领到 100 积分" in got.text and available(ledger, "M2") == 200
        assert "剩余 200 积分" in giver.get("/m/gifts").text


def test_language_is_switched_remembered_and_marked(centre):
    app, _ = centre
    with TestClient(app) as client:
        enter(client, app)
        assert '<html lang="zh-Hans">' in client.get("/m/").text
        hant = client.get("/m/?lang=zh-Hant")
        assert '<html lang="zh-Hant">' in hant.text and "可用積分" in hant.text and "可用积分" not in hant.text
        assert "jifen_lang=zh-Hant" in hant.headers["set-cookie"] and "Path=/;" in hant.headers["set-cookie"]
        assert "可用積分" in client.get("/m/").text  # remembered
        assert '<html lang="zh-Hant">' in client.get("/console/login").text  # one choice for the whole site
        assert '<html lang="en">' in client.get("/m/tier?lang=en").text and "Membership tier" in client.get("/m/tier").text
        assert '<html lang="en">' in client.get("/m/?lang=klingon").text  # unknown: the remembered one stays
    with TestClient(app) as browser:
        enter(browser, app)
        assert '<html lang="zh-Hant">' in browser.get("/m/", headers={"Accept-Language": "zh-TW,zh;q=0.9"}).text
        assert '<html lang="zh-Hans">' in browser.get("/m/", headers={"Accept-Language": "de"}).text


def test_a_member_hammering_the_forms_is_slowed_like_a_member_token(centre, monkeypatch):
    from jifen.config import get_settings
    from jifen.security import ratelimit

    app, ledger = centre
    monkeypatch.setenv("JIFEN_MEMBER_RATE", "3/minute")
    get_settings.cache_clear()
    ratelimit._limiter.cache_clear()
    try:
        with TestClient(app) as client:
            csrf = enter(client, app)
            answers = [client.post("/m/invite", data={"key": f"k-invite-{n}", "csrf": csrf}, follow_redirects=False)
                       for n in range(4)]
            assert [r.status_code for r in answers] == [303, 303, 303, 429]
            assert "操作太频繁" in answers[-1].text
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        ratelimit._limiter.cache_clear()
