"""Group commit of redemptions (flows/redeem.py, flows/group_commit.py): concurrent POST /v1/redemptions
committed in one transaction, the reward's stock taken once per group, each request answered on its own.

As in tests/events/test_group_commit.py the tests gather deterministically: a long window, and the group
closes when its `max_size` requests have arrived (the window is a bound, not a measurement).
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from jifen.db import utcnow
from jifen.events.models import Event
from jifen.flows import redeem as redeem_flow
from jifen.flows.group_commit import GroupCommit
from jifen.idempotency import IdempotencyRecord
from jifen.mall.models import Redemption, Reward
from jifen.security import audit
from jifen.security.audit import AuditEntry
from tests.conftest import Ledger, api_key, keyed
from tests.mall.test_mall import ADDRESS, fund
from tests.support.intake import add_members, configure
from tests.support.racing import race

LONG_WINDOW_MS = 60_000


@pytest.fixture
def groups(monkeypatch):
    """The size of each group of redemptions committed together."""
    sizes: list[int] = []
    commit = redeem_flow.commit_redemptions

    def counted(factory, key, writes):
        sizes.append(len(writes))
        return commit(factory, key, writes)

    monkeypatch.setattr(redeem_flow, "commit_redemptions", counted)
    return sizes


def gather(app, size: int) -> None:
    """The app's next `size` concurrent redemptions go into one group."""
    app.state.redemption_commit = GroupCommit(app.state.sessions, LONG_WINDOW_MS, size,
                                              redeem_flow.commit_redemptions, "redemptions")


def at_once(client, headers, bodies: list[dict]) -> list:
    responses: list = [None] * len(bodies)

    def post(i):
        responses[i] = client.post("/v1/redemptions", json=bodies[i], headers=headers | {"Idempotency-Key": f"r{i}"})

    assert race(post, range(len(bodies))) == []
    return responses


def code(r) -> str | int:
    return r.status_code if r.status_code < 300 else r.json()["error"]["code"]


@pytest.fixture
def shop(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    members = [f"f{i}" for i in range(8)]
    add_members(factory, *members, "poor")
    for mid in members:
        fund(factory, mid, 1_000)
    fund(factory, "poor", 50)
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        for body in ({"code": "flash", "name": "秒殺", "kind": "physical", "category": "實物", "points": 300, "stock": 3},
                     {"code": "mug", "name": "馬克杯", "kind": "physical", "category": "實物", "points": 100,
                      "stock": 10, "per_member_limit": 1}):
            assert client.post("/v1/rewards", json=body, headers=admin).status_code == 201
    return members


def order(member: str, reward: str = "flash") -> dict:
    return {"member_id": member, "reward": reward, "quantity": 1, "address": ADDRESS}


def stock(factory, code_: str) -> tuple[int, int]:
    with factory() as s:
        r = s.scalars(select(Reward).where(Reward.code == code_)).one()
        return r.stock, r.sold


def test_more_attempts_than_stock_in_one_group_exactly_stock_orders(app, factory, shop, groups):
    """Eight members race for three units in one group: three orders in arrival order, five out_of_stock with
    nothing of theirs held; the stock row written once, the ledger intact."""
    gather(app, 8)
    with keyed(TestClient(app)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        responses = at_once(client, headers, [order(m) for m in shop])
    assert groups == [8]
    assert sorted(map(str, (code(r) for r in responses))) == ["201"] * 3 + ["out_of_stock"] * 5
    assert all("suggestions" in r.json()["error"] for r in responses if r.status_code == 409)
    assert stock(factory, "flash") == (0, 3)
    winners = {r.json()["member_id"] for r in responses if r.status_code == 201}
    ledger = Ledger(factory)
    for mid in shop:
        b = ledger.balances(mid)
        assert (b["available"], b["held"]) == ((700, 300) if mid in winners else (1_000, 0))
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Redemption)) == 3
        # one audit line per request (the concurrent ones chained in one transaction), the chain intact
        paths = s.scalars(select(AuditEntry.path).where(AuditEntry.path == "/v1/redemptions")).all()
        assert len(paths) == 8 and audit.verify(s) == []
    assert ledger.verify() == []


def test_concurrent_redemptions_never_oversell_across_groups_on_postgresql(pg_only_url, groups):
    """Forty attempts for three units, gathered in groups of five: exactly three orders, whatever the groups."""
    from jifen.api import create_app
    from jifen.db import make_engine, make_sessionmaker

    app = create_app(pg_only_url)
    factory = make_sessionmaker(make_engine(pg_only_url))
    try:
        configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
        members = [f"p{i}" for i in range(20)]
        add_members(factory, *members)
        for mid in members:
            fund(factory, mid, 1_000)
        gather(app, 5)
        with keyed(TestClient(app)) as client:
            admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
            assert client.post("/v1/rewards", json={"code": "flash", "name": "秒殺", "kind": "physical",
                                                    "category": "實物", "points": 300, "stock": 3},
                               headers=admin).status_code == 201
            responses = at_once(client, {"Authorization": f"Bearer {api_key(app, 'pos')}"},
                                [order(members[i % 20]) for i in range(40)])
        assert sum(groups) == 40 and len(groups) >= 2
        assert sorted(map(str, (code(r) for r in responses))) == ["201"] * 3 + ["out_of_stock"] * 37
        assert stock(factory, "flash") == (0, 3)
        ledger = Ledger(factory)
        held = sum(ledger.balances(mid)["held"] for mid in members)
        assert held == 900 and sum(ledger.balances(mid)["available"] for mid in members) == 20_000 - 900
        assert ledger.verify() == []
    finally:
        app.state.engine.dispose()
        factory.kw["bind"].dispose()


def test_refused_requests_get_their_own_errors_and_the_others_commit(app, factory, shop, groups):
    """In one group: f0 buys a mug, then a second one (limit_reached: its earlier request in the same group
    counts), `poor` cannot pay (insufficient_points), a stranger is unknown (unknown_member), f1's order goes
    through, and a resent request (same key, same body) replays f1's answer."""
    bodies = [order("f0", "mug"), order("f0", "mug"), order("poor", "mug"), order("ghost", "mug"), order("f1", "mug")]
    gather(app, len(bodies) + 1)
    with keyed(TestClient(app)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        responses: list = [None] * (len(bodies) + 1)

        def post(i):
            key = f"m{min(i, 4)}"  # the sixth resends the fifth (same key and body)
            responses[i] = client.post("/v1/redemptions", json=bodies[min(i, 4)],
                                       headers=headers | {"Idempotency-Key": key})

        assert race(post, range(len(bodies) + 1)) == []
    assert groups == [6]
    # (arrival order decides which of f0's two is first, and which of the last two is the replay)
    assert sorted(map(str, (code(r) for r in responses[:2]))) == ["201", "limit_reached"]
    assert [code(r) for r in responses[2:4]] == ["insufficient_points", "unknown_member"]
    assert [code(r) for r in responses[4:]] == [201, 201]
    assert responses[4].json() == responses[5].json()
    assert sorted(r.headers["Idempotent-Replayed"] for r in responses[4:]) == ["false", "true"]
    assert stock(factory, "mug") == (8, 2)
    ledger = Ledger(factory)
    assert ledger.balances("poor")["available"] == 50 and ledger.balances("f0")["held"] == 100
    assert ledger.verify() == []


def test_a_failure_before_commit_answers_nobody_with_success(app, factory, shop, groups):
    """The group's transaction dies at its commit, and so does every transaction after it: no request of the
    group is answered 2xx, nothing of theirs is stored, the stock is untouched."""

    def killed_at_commit(session):
        if session.scalar(select(func.count()).select_from(Redemption)):
            raise RuntimeError("killed before commit")

    sa_event.listen(app.state.sessions, "before_commit", killed_at_commit)
    gather(app, 4)
    with keyed(TestClient(app, raise_server_exceptions=False)) as client:
        headers = {"Authorization": f"Bearer {api_key(app, 'pos')}"}
        responses = at_once(client, headers, [order(m) for m in shop[:4]])
    assert groups == [4]
    assert [r.status_code for r in responses] == [500] * 4  # (each ran alone after the group, and died too)
    assert stock(factory, "flash") == (3, 0)
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Redemption)) == 0
    assert all(Ledger(factory).balances(m)["held"] == 0 for m in shop[:4])


def test_attempts_at_a_sold_out_reward_are_answered_together_each_as_alone(app, factory, shop, groups, monkeypatch):
    """The stock is gone before the second group starts, so each of its attempts is answered in the group's
    one pass for sold-out attempts (flows/redeem.py `_Sale.answer`), as it would be alone: a resent winner
    replays its order, a reused key with another body is 409, an unknown member 404, an order without an
    address 422, and the others out_of_stock with suggestions from their own points; nothing of theirs is
    kept. Stock given back (an order cancelled) is sold again by the next group."""
    deferred: list[int] = []
    answer = redeem_flow._Sale.answer
    monkeypatch.setattr(redeem_flow._Sale, "answer", lambda sale, writes, now: (
        deferred.append(len(writes)), answer(sale, writes, now))[1])
    headers = lambda key: {"Authorization": f"Bearer {api_key(app, 'pos')}", "Idempotency-Key": key}  # noqa: E731
    gather(app, 3)
    with keyed(TestClient(app)) as client:
        won = {}

        def buy(i):
            won[i] = client.post("/v1/redemptions", json=order(f"f{i}"), headers=headers(f"w{i}"))

        assert race(buy, range(3)) == []
    assert [won[i].status_code for i in range(3)] == [201] * 3 and stock(factory, "flash") == (0, 3)
    with factory() as s:  # each order's redeem event, taken with the group's others at its end
        assert sorted(s.scalars(select(Event.event_id).where(Event.type == "redeem"))) == sorted(
            f"redeem:{won[i].json()['id']}" for i in range(3))

    late = [("w0", order("f0")), ("w1", order("f3")), ("l-ghost", order("ghost")),
            ("l-f4", order("f4") | {"address": None}), ("l-poor", order("poor")), ("l-f5", order("f5"))]
    gather(app, len(late))
    with keyed(TestClient(app)) as client:
        answers: list = [None] * len(late)

        def attempt(i):
            answers[i] = client.post("/v1/redemptions", json=late[i][1], headers=headers(late[i][0]))

        assert race(attempt, range(len(late))) == []
        assert groups == [3, len(late)] and deferred == [len(late)]
        assert [code(r) for r in answers] == [201, "idempotency_key_reused", "unknown_member", "address_required",
                                              "out_of_stock", "out_of_stock"]
        assert answers[0].json() == won[0].json() and answers[0].headers["Idempotent-Replayed"] == "true"
        assert answers[4].json()["error"]["suggestions"] == []  # (50 points buy nothing)
        assert [x["reward"] for x in answers[5].json()["error"]["suggestions"]] == ["mug"]
        with factory() as s:
            assert s.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.key.like("l-%"))).all() == []
        ledger = Ledger(factory)
        assert all(ledger.balances(m)["held"] == 0 for m in ("f3", "f4", "f5", "poor"))

        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        assert client.post(f"/v1/redemptions/{won[0].json()['id']}/cancel", headers=admin).status_code == 200
    assert stock(factory, "flash") == (1, 2)
    gather(app, 2)
    with keyed(TestClient(app)) as client:
        again: list = [None] * 2

        def retry(i):
            again[i] = client.post("/v1/redemptions", json=order(f"f{5 + i}"), headers=headers(f"again{i}"))

        assert race(retry, range(2)) == []
    assert sorted(map(str, (code(r) for r in again))) == ["201", "out_of_stock"] and deferred == [len(late), 1]
    assert stock(factory, "flash") == (0, 3)
    assert Ledger(factory).verify() == []
