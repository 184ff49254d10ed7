"""Campaigns, experiments and bandits over HTTP: deterministic assignment, results with intervals and
p-values, the plan before a test, Thompson sampling converging in simulation, and bad input refused
with the project's error shape and nothing changed."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from jifen.campaigns import bandit
from jifen.db import utcnow
from tests.conftest import api_key, keyed
from tests.support.intake import add_members, configure, event, send

MEMBERS = [f"m{i:03d}" for i in range(120)]


@pytest.fixture
def client(app, factory):
    configure(factory, {"pending_days": {}, "rules": {"rules": [
        {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}}]}}, now=utcnow() - dt.timedelta(days=2))
    add_members(factory, *MEMBERS)
    with keyed(TestClient(app)) as c:
        c.headers["Authorization"] = f"Bearer {api_key(app, 'admin')}"
        yield c


def window(days_back=1, days_on=2):
    start = utcnow() - dt.timedelta(days=days_back)
    return {"starts_at": start.isoformat(), "ends_at": (start + dt.timedelta(days=days_on)).isoformat()}


def test_experiment_assignment_results_and_plan(client, factory):
    body = {"key": "offer_test", "name": "滿減 vs 雙倍", "arms": [{"name": "control"}, {"name": "coupon"}],
            "holdout": 0.1, "metric": "conversion", **window()}
    made = client.post("/v1/experiments", json=body)
    assert made.status_code == 201, made.text
    arms = {m: client.get(f"/v1/experiments/offer_test/assignments/{m}").json()["arm"] for m in MEMBERS}
    assert arms == {m: client.get(f"/v1/experiments/offer_test/assignments/{m}").json()["arm"] for m in MEMBERS}
    assert set(arms.values()) == {"control", "coupon", "holdout"}
    # Every member of the coupon arm buys, nobody else: conversion 100% against 0%.
    buyers = [m for m, a in arms.items() if a == "coupon"]
    send(factory, *[event(m, at=utcnow() - dt.timedelta(hours=1), amount=50, order_id=f"o-{m}") for m in buyers])
    got = client.get("/v1/experiments/offer_test/results").json()
    assert got["groups"] == {a: list(arms.values()).count(a) for a in ("control", "coupon", "holdout")}
    coupon = next(c for c in got["comparisons"] if c["group"] == "coupon")
    assert coupon["conversion"]["difference"] == 1.0 and coupon["conversion"]["p_value"] < 1e-6
    assert coupon["spend"]["difference"] == 50.0 and coupon["spend"]["significant"] is True
    assert got["metrics"]["coupon"]["conversion"] == 1.0 and got["metrics"]["control"]["conversion"] == 0.0
    plan = client.post("/v1/experiments/plan", json={"baseline": 0.1, "lift": 0.02}).json()
    assert plan["members_per_arm"] == 3835
    mde = client.post("/v1/experiments/plan", json={"baseline": 0.1, "members_per_arm": 3835}).json()
    assert mde["lift"] == pytest.approx(0.02, abs=1e-4)


def test_campaign_over_http_and_bad_input(client, factory):
    body = {"code": "double11", "name": "雙11 雙倍積分", "effect": {"multiplier": 2}, "budget": 50_000,
            "sponsor": {"name": "蒙牛", "share": 0.3}, "holdout": 0.2, **window()}
    assert client.post("/v1/campaigns", json=body).status_code == 201
    assert client.post("/v1/campaigns", json=body).json()["error"]["code"] == "campaign_exists"
    assert client.post("/v1/campaigns/double11/launch").json()["status"] == "live"
    send(factory, *[event(m, at=utcnow(), amount=100, order_id=f"o-{m}") for m in MEMBERS])
    rep = client.get("/v1/campaigns/double11/report").json()
    assert rep["groups"]["treated"] + rep["groups"]["holdout"] == len(MEMBERS)
    assert rep["cost"]["points"] == 100 * rep["groups"]["treated"] == rep["budget"]["used"]
    assert rep["cost"]["sponsored_points"] == 30 * rep["groups"]["treated"]
    assert client.patch("/v1/campaigns/double11", json={"rollout": 0.5}).json()["rollout"] == "0.5"
    for path, payload, code in (
        ("/v1/campaigns", body | {"code": "x", "effect": {"multiplier": 2, "bonus": 5}}, "invalid_request"),
        ("/v1/campaigns", body | {"code": "y", "ends_at": body["starts_at"]}, "invalid_request"),
        ("/v1/campaigns/nope/launch", None, "unknown_campaign"),
        ("/v1/campaigns/double11/launch", None, "campaign_not_draft"),
    ):
        answer = client.post(path, json=payload)
        assert 400 <= answer.status_code < 500 and answer.json()["error"]["code"] == code, (path, answer.text)
    uploaded = client.put("/v1/campaigns/double11/members", json={"member_ids": ["m001", "ghost"]})
    assert uploaded.status_code == 422 and uploaded.json()["error"]["code"] == "unknown_members"
    assert [c["code"] for c in client.get("/v1/campaigns").json()] == ["double11"]
    assert client.post("/v1/campaigns/double11/stop").json()["status"] == "ended"


def test_bandit_online_and_in_simulation(client):
    assert client.post("/v1/bandits", json={"key": "offers", "arms": ["a", "b", "c"]}).status_code == 201
    shown = [client.post("/v1/bandits/offers/choose").json()["arm"] for _ in range(12)]
    for arm in shown:
        assert client.post("/v1/bandits/offers/rewards", json={"arm": arm, "converted": arm == "b"}).status_code == 200
    state = client.get("/v1/bandits/offers").json()
    assert state["pulls"] == 12 and sum(a["conversions"] for a in state["arms"]) == shown.count("b")
    unpulled = [a["arm"] for a in state["arms"] if a["pulls"] == a["conversions"]]
    if unpulled:  # every pull of this arm already converted: one more conversion is refused
        refused = client.post("/v1/bandits/offers/rewards", json={"arm": unpulled[0], "converted": True})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_pull_to_reward"
    assert client.post("/v1/bandits/offers/rewards", json={"arm": "zz", "converted": True}).status_code == 404
    sim = client.post("/v1/bandits/simulate", json={"rates": [0.04, 0.06, 0.12], "rounds": 4000, "seed": 3}).json()
    assert sim["best_arm"] == 2 and sim["best_share_last_tenth"] > 0.9


def test_thompson_sampling_converges_and_regret_grows_ever_slower():
    sim = bandit.simulate([0.05, 0.08, 0.10, 0.15], rounds=10_000, seed=11)
    assert sim["pulls"][3] == max(sim["pulls"]) and sim["best_share_last_tenth"] > 0.9
    curve = [point["regret"] for point in sim["regret_curve"]]
    first_half, second_half = curve[4], curve[-1] - curve[4]
    assert second_half < first_half / 2  # sublinear: the later 5,000 rounds cost less than half the first
    uniform_regret = 10_000 * (0.15 - sum([0.05, 0.08, 0.10, 0.15]) / 4)
    assert sim["regret"] < uniform_regret / 5
