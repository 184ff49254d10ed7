"""The console's webhook endpoints (webhooks:manage): made with the signing secret shown once, listed
with their deliveries by status, disabled; an endpoint's delivery log (status, attempts, last error); a
dead or delivered delivery replayed — the same delivery back in line, so the same event id goes out
again — once per form, and not while it is already in line."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from jifen.db import utcnow
from jifen.ledger import operations as ops
from jifen.notify import dispatcher
from jifen.notify.channels import message_id
from jifen.notify.models import Delivery, WebhookSubscription
from tests.conftest import Ledger, m
from tests.support.console_login import console_as, once_keys


def make_endpoint(client, csrf: str, url: str, topics: str):
    once = once_keys(client.get("/console/webhooks").text, "/console/webhooks")["/console/webhooks"]
    return client.post("/console/webhooks", data={"csrf": csrf, "once": once, "url": url, "topics": topics})


def deliveries(app) -> list[tuple[int, int, str, int]]:
    with app.state.sessions() as s:
        return [(d.id, d.message_id, d.status, d.attempts) for d in s.scalars(
            select(Delivery).where(Delivery.channel == "webhook").order_by(Delivery.id))]


def test_endpoint_log_and_replay(site):
    app, _ = site
    dispatcher.fan_out(app.state.sessions)  # the fixture's own messages, before there is an endpoint
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator", "integrator")
        assert 'href="/console/webhooks"' in client.get("/console/notifications").text
        made = make_endpoint(client, csrf, "https://crm.example.test/hooks", "points.awarded, points.adjusted")
        assert made.status_code == 200 and re.search(r'id="secret">whsec_', made.text)
        with app.state.sessions() as s:
            sub = s.scalars(select(WebhookSubscription)).one()
        assert sub.topics == ["points.adjusted", "points.awarded"] and sub.active
        assert sub.secret not in client.get("/console/webhooks").text  # shown once
        # Two awards: one delivery dead after its attempts, one delivered.
        Ledger(app.state.sessions).run(lambda sc, s: ops.award(sc, m(sc, "M2"), 10, reference="A"))
        Ledger(app.state.sessions).run(lambda sc, s: ops.award(sc, m(sc, "M2"), 20, reference="B"))
        dispatcher.fan_out(app.state.sessions)
        (dead, _, _, _), (ok, _, _, _) = deliveries(app)
        with app.state.sessions() as s, s.begin():
            s.execute(update(Delivery).where(Delivery.id == dead).values(status="dead", attempts=8,
                                                                          last_error="HTTP 502 from crm"))
            s.execute(update(Delivery).where(Delivery.id == ok).values(status="delivered", attempts=1,
                                                                        delivered_at=utcnow()))
        log = client.get(f"/console/webhooks/{sub.id}")
        assert log.status_code == 200
        assert f"jd_{dead}" in log.text and "HTTP 502 from crm" in log.text and "points.awarded" in log.text
        keys = once_keys(log.text, f"/console/webhooks/{sub.id}/deliveries/")
        assert set(keys) == {f"/console/webhooks/{sub.id}/deliveries/{d}/replay" for d in (dead, ok)}
        before = deliveries(app)
        replay = f"/console/webhooks/{sub.id}/deliveries/{dead}/replay"
        sent = {"csrf": csrf, "once": keys[replay]}
        done = client.post(replay, data=sent, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == f"/console/webhooks/{sub.id}?done=replay"
        after = deliveries(app)
        # The same delivery (same id, same message: the same webhook-id), back in line, attempts reset.
        assert after[0] == (dead, before[0][1], "pending", 0) and len(after) == len(before)
        with app.state.sessions() as s:
            assert message_id(s.get_one(Delivery, dead)) == f"jd_{dead}"
        assert client.post(replay, data=sent, follow_redirects=False).status_code == 303  # the form again: once
        assert deliveries(app) == after
        in_line = client.post(replay, data={"csrf": csrf, "once": "f" * 32})  # another form, while it waits
        assert in_line.status_code == 409 and "already in line" in in_line.text and deliveries(app) == after
        # A delivered one may be sent again too (its receiver lost it).
        key = keys[f"/console/webhooks/{sub.id}/deliveries/{ok}/replay"]
        client.post(f"/console/webhooks/{sub.id}/deliveries/{ok}/replay", data={"csrf": csrf, "once": key})
        assert deliveries(app)[1][2] == "pending"
        # The status filter.
        assert f"jd_{dead}" in client.get(f"/console/webhooks/{sub.id}", params={"status": "pending"}).text
        assert f"jd_{dead}" not in client.get(f"/console/webhooks/{sub.id}", params={"status": "dead"}).text

        # Disabled: no new deliveries.
        assert client.post(f"/console/webhooks/{sub.id}/disable", data={"csrf": csrf},
                           follow_redirects=False).status_code == 303
        Ledger(app.state.sessions).run(lambda sc, s: ops.award(sc, m(sc, "M2"), 5, reference="C"))
        dispatcher.fan_out(app.state.sessions)
        assert len(deliveries(app)) == 2
        assert f'action="/console/webhooks/{sub.id}/disable"' not in client.get("/console/webhooks").text


def test_bad_endpoints_are_refused_and_nothing_is_made(site):
    app, _ = site
    with TestClient(app) as client:
        csrf = console_as(client, app, "admin")
        for url, topics, message in [("ftp://x.example/h", "*", "http:// or https://"),
                                     ("https://x.example/h", " , ", "at least one topic")]:
            refused = make_endpoint(client, csrf, url, topics)
            assert refused.status_code == 422 and message in refused.text
        assert client.get("/console/webhooks/99").status_code == 404
        assert client.post("/console/webhooks/99/deliveries/1/replay", data={"csrf": csrf}).status_code == 404
    with app.state.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebhookSubscription)) == 0


def test_roles_without_webhooks_manage_see_no_page(site):
    app, _ = site
    with TestClient(app) as client:
        csrf = console_as(client, app, "customer_service")
        assert 'href="/console/webhooks"' not in client.get("/console/notifications").text
        assert client.get("/console/webhooks").status_code == 403
        assert client.post("/console/webhooks", data={"csrf": csrf, "url": "https://x.example", "topics": "*"}
                           ).status_code == 403
