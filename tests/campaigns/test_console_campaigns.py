"""The console's campaigns page shows a campaign's report, an experiment's results and a bandit, to the
roles that read reports, in both languages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.campaigns.test_experiments_api import MEMBERS, client, window  # noqa: F401 - the fixture
from tests.support.console_login import console_as
from tests.support.intake import event, send


def test_campaigns_page(client, app, factory):  # noqa: F811 - the fixture
    body = {"code": "double11", "name": "雙11 雙倍積分", "effect": {"multiplier": 2}, "budget": 90_000,
            "sponsor": {"name": "蒙牛", "share": 0.5}, "holdout": 0.2, **window()}
    client.post("/v1/campaigns", json=body)
    client.post("/v1/campaigns/double11/launch")
    client.post("/v1/experiments", json={"key": "ab", "name": "文案實驗", "arms": [{"name": "plain"}, {"name": "bold"}],
                                         **window()})
    client.post("/v1/bandits", json={"key": "offers", "arms": ["coupon", "gift"]})
    send(factory, *[event(m, amount=100, order_id=f"o-{m}") for m in MEMBERS])
    report = client.get("/v1/campaigns/double11/report").json()
    with TestClient(app) as browser:
        console_as(browser, app, "finance")
        page = browser.get("/console/campaigns")
        assert page.status_code == 200
        assert "雙11 雙倍積分" in page.text and "文案實驗" in page.text and "offers" in page.text
        assert f"{report['cost']['points']} · ¥{report['cost']['liability_yuan']}" in page.text
        assert "蒙牛" in page.text and "增量消费" in page.text
        assert "Incremental spend" in browser.get("/console/campaigns?lang=en").text
    with TestClient(app) as browser:
        console_as(browser, app, "customer_service")
        assert browser.get("/console/campaigns").status_code == 403


def _form(**fields) -> dict:
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(second=0, microsecond=0, tzinfo=None)
    return {"code": "half", "name": "周末积分翻倍", "effect": "double_value", "value": "", "weekdays": "6, 7",
            "days": "", "starts_at": (now - dt.timedelta(hours=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=7)).isoformat(), "budget": "50,000", "sponsor": "伊利", "share": "0.5",
            "rollout": "", "holdout": "0.1", "launch": "on"} | fields


def test_a_campaign_of_double_value_days_is_defined_in_the_console(client, app):  # noqa: F811 - the fixture
    with TestClient(app) as browser:
        csrf = console_as(browser, app, "operator")
        page = browser.get("/console/campaigns").text
        assert "积分价值翻倍日 (积分商城)" in page and 'value="double_value"' in page
        for bad in ({"weekdays": "9"}, {"weekdays": "周六"}, {"value": "1"}, {"budget": "0"}, {"effect": "triple"},
                    {"ends_at": "not a time"}):
            refused = browser.post("/console/campaigns", data=_form(**bad) | {"csrf": csrf, "once": f"k{bad}"})
            assert refused.status_code == 422 and '<p class="error">' in refused.text
        assert client.get("/v1/campaigns").json() == []  # nothing stored
        made = browser.post("/console/campaigns", data=_form() | {"csrf": csrf, "once": "ok"}, follow_redirects=False)
        assert made.status_code == 303 and made.headers["location"] == "/console/campaigns?done=campaign_launched"
        assert "营销活动已上线" in browser.get(made.headers["location"]).text
    shown = client.get("/v1/campaigns/half").json()
    assert (shown["status"], shown["budget"], shown["holdout"]) == ("live", 50_000, "0.1")
    assert shown["sponsor"]["name"] == "伊利" and Decimal(shown["sponsor"]["share"]) == Decimal("0.5")
    assert shown["effect"] == {"double_value": {"days_of_month": [], "weekdays": [6, 7], "factor": "2"}}
    with TestClient(app) as reader:  # finance reads the reports: no form, and a sent one is refused
        csrf = console_as(reader, app, "finance")
        assert 'action="/console/campaigns"' not in reader.get("/console/campaigns").text
        assert reader.post("/console/campaigns", data=_form(code="other") | {"csrf": csrf}).status_code == 403
