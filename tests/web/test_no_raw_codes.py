"""Every code shown to a person has its label: the main console pages and the member centre, walked in
each language, show no known code raw (tests/support/raw_codes.py says what counts)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.mall.models import Redemption
from jifen.web.i18n import LANGUAGES
from tests.support.console_login import sign_in
from tests.support.demo_site import member_token, shopper
from tests.support.raw_codes import raw_codes, shown_text

CONSOLE = ["/console", "/console/members", "/console/rules", "/console/rules/draft", "/console/mall",
           "/console/notifications", "/console/risk", "/console/users", "/p/default/rules",
           "/console/analytics/rfm", "/console/analytics/clv?check=1", "/console/analytics/cohorts",
           "/console/analytics/economy", "/console/engagement", "/console/audit", "/console/api-keys",
           "/console/webhooks", "/console/mall/write-offs", "/console/approvals"]
CENTRE = ["/m/", "/m/history?days=365", "/m/tier", "/m/mall", "/m/mall/cup", "/m/orders", "/m/check-in", "/m/tasks",
          "/m/invite", "/m/gifts", "/m/messages"]


def test_the_checker_finds_raw_codes():
    assert raw_codes(shown_text("<td>award</td><p>积分 check_in</p><span class='mono'>award</span>"), "zh-Hans") == {
        "award", "check_in"}
    assert raw_codes(shown_text("<td>award</td><p>an award for shared_device</p>"), "en") == {"award", "shared_device"}
    assert raw_codes(shown_text("<td>获得</td><p class='mono x'>purchase_base</p><script>'award'</script>"),
                     "zh-Hant") == set()


def test_console_and_member_centre_show_no_raw_code_in_any_language(demo):
    member_id = shopper(demo)
    with demo.state.sessions() as s:
        order = s.scalar(select(Redemption.id).order_by(Redemption.id).limit(1))
    pages = CONSOLE + [f"/console/members/{member_id}"]
    centre = CENTRE + [f"/m/orders/{order}"]
    with TestClient(demo) as operator, TestClient(demo) as member:
        assert sign_in(operator, "boss").status_code == 303
        assert member.get("/m/enter", params={"token": member_token(demo, member_id)}).status_code == 200
        for lang in LANGUAGES:
            for client, paths in ((operator, pages), (member, centre)):
                for path in paths:
                    r = client.get(path, params={"lang": lang})
                    assert r.status_code == 200, (lang, path, r.status_code)
                    assert f'<html lang="{lang}">' in r.text, (lang, path)
                    assert raw_codes(shown_text(r.text), lang) == set(), (lang, path)
