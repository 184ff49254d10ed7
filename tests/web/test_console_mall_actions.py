"""The mall page's actions: a reward added (checked as the API checks it), edited, its stock changed; orders
fulfilled, cancelled and refunded through the mall's state machine; refusals shown with nothing changed;
roles without mall:manage see no form and get 403."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from jifen.db import utcnow
from jifen.flows.redeem import redeem
from jifen.ledger import operations as ops
from jifen.mall.models import Redemption, Reward
from jifen.mall.service import get_reward
from tests.conftest import Ledger, m
from tests.mall.test_mall import ADDRESS
from tests.support.console_login import console_as, once_keys


def forms(client) -> dict[str, str]:
    """{action: its one-time key} of the mall page's forms, freshly rendered."""
    return once_keys(client.get("/console/mall").text, "/console/mall/")


def post(client, csrf: str, action: str, **fields):
    return client.post(action, data={"csrf": csrf, "once": forms(client)[action], **fields}, follow_redirects=False)


def reward(app, code: str) -> Reward:
    with app.state.sessions() as s:
        return s.scalars(select(Reward).where(Reward.code == code)).one()


def order_status(app, order_id: int) -> str:
    with app.state.sessions() as s:
        return s.get_one(Redemption, order_id).status


NEW = {"code": "mug", "name": "Jifen mug", "kind": "physical", "category": "home/kitchen", "points": "500",
       "stock": "10", "value": "39.90"}


def test_a_reward_is_added_edited_and_restocked(app):
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator")
        added = post(client, csrf, "/console/mall/rewards", **NEW)
        assert added.status_code == 303 and added.headers["location"] == "/console/mall?done=reward_created"
        mug = reward(app, "mug")
        assert (mug.name, mug.kind, mug.points, mug.stock, mug.stock_total, str(mug.value)) == (
            "Jifen mug", "physical", 500, 10, 10, "39.90")
        # The same code again, a price of no points, a kind that does not exist: refused, shown, nothing added.
        for changed, message in [({}, "exists"), ({"code": "cup", "points": "0"}, "points"),
                                 ({"code": "cup", "kind": "spaceship"}, "kind")]:
            refused = post(client, csrf, "/console/mall/rewards", **(NEW | changed))
            assert refused.status_code == 422 and message in refused.text, changed
            assert 'value="Jifen mug"' in refused.text  # the form as it was sent
        with app.state.sessions() as s:
            assert s.scalars(select(Reward.code)).all() == ["mug"]
        assert post(client, csrf, "/console/mall/rewards/mug/stock", delta="+5").status_code == 303
        assert (reward(app, "mug").stock, reward(app, "mug").stock_total) == (15, 15)
        too_many = post(client, csrf, "/console/mall/rewards/mug/stock", delta="-16")
        assert too_many.status_code == 422 and "only 15 units" in too_many.text and reward(app, "mug").stock == 15
        assert post(client, csrf, "/console/mall/rewards/mug/edit", name="Big mug", points="450").status_code == 303
        edited = reward(app, "mug")
        assert (edited.name, edited.points, edited.active) == ("Big mug", 450, False)  # unchecked: unlisted
        assert post(client, csrf, "/console/mall/rewards/mug/edit", name="Big mug", points="x",
                    active="on").status_code == 422
        assert reward(app, "mug").active is False


def test_orders_are_fulfilled_cancelled_and_refunded(app):
    ledger = Ledger(app.state.sessions, now=utcnow())
    ledger.add_members("M1")
    ledger.run(lambda sc, s: ops.award(sc, m(sc, "M1"), 5000))
    with TestClient(app) as client:
        csrf = console_as(client, app, "customer_service")
        post(client, csrf, "/console/mall/rewards", **NEW)
        first, second = (ledger.run(lambda sc, s: redeem(sc, m(sc, "M1"), get_reward(s, sc.program, "mug"), 1, ADDRESS)).id
                         for _ in range(2))
        assert ledger.balances("M1")["held"] == 1000 and reward(app, "mug").stock == 8
        actions = forms(client)
        assert {f"/console/mall/orders/{first}/fulfil", f"/console/mall/orders/{first}/cancel"} <= set(actions)
        assert f"/console/mall/orders/{first}/refund" not in actions  # not offered before fulfilment
        refund_early = client.post(f"/console/mall/orders/{first}/refund",
                                   data={"csrf": csrf, "once": "early"})
        assert refund_early.status_code == 422 and "cannot become refunded" in refund_early.text
        assert post(client, csrf, f"/console/mall/orders/{first}/fulfil").status_code == 303
        assert order_status(app, first) == "fulfilled" and ledger.balances("M1")["available"] == 4000
        assert post(client, csrf, f"/console/mall/orders/{second}/cancel").status_code == 303
        assert order_status(app, second) == "cancelled" and reward(app, "mug").stock == 9
        assert post(client, csrf, f"/console/mall/orders/{first}/refund").status_code == 303
        assert order_status(app, first) == "refunded" and reward(app, "mug").stock == 10
        assert ledger.balances("M1")["available"] == 5000
        assert ledger.balances("M1")["held"] == 0
    assert ledger.verify() == []


def test_roles_without_mall_manage_see_no_form_and_are_refused(app):
    with TestClient(app) as client:
        csrf = console_as(client, app, "operator")
        post(client, csrf, "/console/mall/rewards", **NEW)
    for role in ("auditor", "finance", "pos"):
        with TestClient(app) as client:
            csrf = console_as(client, app, role)
            page = client.get("/console/mall")
            assert page.status_code == 200 and "mug" in page.text and forms(client) == {}, role
            for action, fields in [("/console/mall/rewards", NEW | {"code": "cup"}),
                                   ("/console/mall/rewards/mug/stock", {"delta": "5"}),
                                   ("/console/mall/orders/1/cancel", {})]:
                assert client.post(action, data={"csrf": csrf, "once": "k", **fields}).status_code == 403, role
    assert reward(app, "mug").stock == 10
    with app.state.sessions() as s:
        assert s.scalars(select(Reward.code)).all() == ["mug"]
