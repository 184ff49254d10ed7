"""The console's campaigns page shows a campaign's report, an experiment's results and a bandit, to the
roles that read reports, in both languages."""

from __future__ import annotations

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
