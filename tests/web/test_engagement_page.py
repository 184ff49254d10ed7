"""The console's engagement page: its counts equal the engagement figures (analytics/engagement.py) and what
was done — a task completed by the members who checked in, streaks of 3, 1 and a lapsed 2, two invitations
of which one bought, a red packet half claimed, a gift, a team — and a task is switched off and on again
by a role that manages tasks, refused (nothing changed) for one that does not."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.analytics import engagement
from jifen.db import utcnow
from jifen.engagement.models import Task
from jifen.programs.service import get_program
from jifen.web.i18n import LANGUAGES
from tests.conftest import api_key, keyed
from tests.support.console_login import add_user, console_as, csrf_of, once_keys, sign_in
from tests.support.intake import add_members, configure, event, send
from tests.support.raw_codes import raw_codes, shown_text


@pytest.fixture
def programme(app, factory):
    now = utcnow()
    configure(factory, {"pending_days": {}}, now=now - dt.timedelta(days=60))
    add_members(factory, "alice", "bob", "carol", "dan")
    with keyed(TestClient(app)) as api:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}

        def post(url, body=None, status=201):
            r = api.post(url, json=body, headers=admin)
            assert r.status_code == status, (url, r.text)
            return r.json()

        post("/v1/tasks", {"code": "first_check_in", "name": "首次签到", "events": ["check_in"], "points": 10})
        post("/v1/tasks", {"code": "big_spender", "name": "消费满千", "events": ["purchase"], "measure": "amount",
                           "target": 1000, "points": 100, "badge": "spender"})
        days = {"alice": (2, 1, 0), "bob": (10, 9), "carol": (0,)}  # streaks: 3 alive, 2 lapsed, 1 alive
        send(factory, *[event(who, "check_in", at=now - dt.timedelta(days=d)) for who, ds in days.items() for d in ds],
             now=now)
        send(factory, event("alice", amount="800", at=now - dt.timedelta(days=5)), now=now)
        code = post("/v1/members/alice/invite-code", status=200)["code"]
        post("/v1/referrals", {"member_id": "bob", "code": code})
        post("/v1/referrals", {"member_id": "dan", "code": code})
        send(factory, event("bob", amount="120", at=now), now=now)  # bob's first purchase: a conversion
        post("/v1/members/alice/friends", {"friend_id": "carol"})
        packet = post("/v1/red-packets", {"member_id": "alice", "points": 100, "shares": 2, "split": "equal"})
        post(f"/v1/red-packets/{packet['id']}/claim", {"member_id": "carol"})
        post("/v1/gifts", {"from_member_id": "alice", "to_member_id": "carol", "points": 30})
        team = post("/v1/teams", {"member_id": "alice", "name": "早起小队", "goal": 5000})
        post(f"/v1/teams/{team['code']}/join", {"member_id": "carol"}, status=200)
    with TestClient(app) as client:
        assert sign_in(client, add_user(app, "operator", "xiaowang")).status_code == 303
        yield client, now, team["code"]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_page_shows_the_engagement_figures(programme, factory):
    client, now, team = programme
    page = client.get("/console/engagement")
    assert page.status_code == 200
    html = page.text
    with factory() as s:
        program = get_program(s, "default")
        tasks = {t["code"]: t for t in engagement.task_table(s, program, utcnow())}
        check_ins = engagement.check_in_figures(s, program, utcnow())
        referrals = engagement.referral_figures(s, program, utcnow())
        gifts = engagement.gift_figures(s, program)
        teams = engagement.team_table(s, program, utcnow())
    assert (tasks["first_check_in"]["completions"], tasks["first_check_in"]["members"]) == (3, 3)
    assert tasks["big_spender"]["completions"] == 0
    row = html.split('data-task="first_check_in"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'data-key="completions">3<', row) and re.search(r'data-key="members">3<', row)
    assert {b["band"]: b["members"] for b in check_ins["bands"]} == {
        "1": 1, "2-3": 1, "4-6": 0, "7-13": 0, "14-29": 0, "30+": 0, "lapsed": 1}
    assert (check_ins["members"], check_ins["today"], check_ins["longest"]) == (3, 2, 3)
    for band, members in (("2-3", 1), ("1", 1), ("lapsed", 1), ("30+", 0)):
        cell = html.split(f'data-band="{band}"', 1)[1].split("</tr>", 1)[0]
        assert cell.rstrip().endswith(f'<td class="num">{members}</td>'), band
    assert (referrals["invites"], referrals["conversions"], referrals["conversion_rate"]) == (2, 1, 0.5)
    assert referrals["top"] == [{"member_id": "alice", "invited": 2, "converted": 1}]
    assert 'data-key="invites">2<' in html and 'data-key="conversion_rate">50.0%<' in html
    assert gifts["red_packets"] == [{"status": "open", "packets": 1, "points": 100, "shares": 2, "claimed": 1,
                                     "claimed_points": 50}]
    assert (gifts["gifts"], gifts["gift_points"]) == (1, 30) and 'data-key="gifts">1<' in html
    assert teams == [{"code": team, "name": "早起小队", "captain": "alice", "size": 2, "goal": 5000,
                      "recent_points": teams[0]["recent_points"]}]
    assert f'data-team="{team}"' in html and "早起小队" in html


def test_a_task_is_switched_off_and_on_by_a_role_that_manages_tasks(programme, app):
    client, _, _ = programme
    page = client.get("/console/engagement").text
    csrf, keys = csrf_of(page), once_keys(page, "/console/engagement/tasks/")
    r = client.post("/console/engagement/tasks/first_check_in/off",
                    data={"csrf": csrf, "once": keys["/console/engagement/tasks/first_check_in/off"]},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/engagement?done=task_off"
    with app.state.sessions() as s:
        assert s.scalar(select(Task.active).where(Task.code == "first_check_in")) is False
    page = client.get("/console/engagement?done=task_off").text
    assert "任务已停用" in page and 'action="/console/engagement/tasks/first_check_in/on"' in page
    on = once_keys(page, "/console/engagement/tasks/")["/console/engagement/tasks/first_check_in/on"]
    assert client.post("/console/engagement/tasks/first_check_in/on", data={"csrf": csrf, "once": on},
                       follow_redirects=False).status_code == 303
    with app.state.sessions() as s:
        assert s.scalar(select(Task.active).where(Task.code == "first_check_in")) is True


def test_switching_a_task_is_refused_with_nothing_changed(programme, app):
    client, _, _ = programme
    page = client.get("/console/engagement").text
    csrf, key = csrf_of(page), once_keys(page, "/console/engagement/tasks/")[
        "/console/engagement/tasks/first_check_in/off"]
    unknown = client.post("/console/engagement/tasks/no_such_task/off", data={"csrf": csrf, "once": key})
    assert unknown.status_code == 422 and "no task &#39;no_such_task&#39;" in unknown.text
    assert client.post("/console/engagement/tasks/first_check_in/off",
                       data={"csrf": "forged", "once": key}).status_code == 403
    with TestClient(app) as finance:
        token = console_as(finance, app, "finance")
        page = finance.get("/console/engagement")
        assert page.status_code == 200 and "/console/engagement/tasks/" not in page.text  # no buttons for it
        assert finance.post("/console/engagement/tasks/first_check_in/off",
                            data={"csrf": token, "once": "x" * 32}).status_code == 403
    with app.state.sessions() as s:
        assert s.scalar(select(Task.active).where(Task.code == "first_check_in")) is True


def test_the_page_shows_no_raw_code_in_any_language(programme):
    client, _, _ = programme
    for lang in LANGUAGES:
        page = client.get("/console/engagement", params={"lang": lang})
        assert page.status_code == 200 and raw_codes(shown_text(page.text), lang) == set(), lang
    assert "Check-in" in page.text and "Open" in page.text  # (English last) the event type and packet state
