"""Lottery (distribution, stock and budget caps, replayable draws), partner exchange with its
reconciliation, and the supplier settlement report."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from jifen.db import utcnow
from jifen.mall.lottery import pick
from tests.conftest import api_key, keyed
from tests.mall.test_mall import ADDRESS, balance, fund, mall, post  # noqa: F401 - the catalogue fixture
from tests.support.intake import add_members, configure


def chi_square(observed: Counter, weights: dict[int, int], n: int) -> float:
    total = sum(weights.values())
    return sum((observed[k] - n * w / total) ** 2 / (n * w / total) for k, w in weights.items())


def test_pick_follows_the_weights():
    weights = {1: 1, 2: 10, 3: 89}
    rng = random.Random(7)
    n = 40_000
    got = Counter(pick(list(weights.items()), Decimal(rng.getrandbits(53)) / Decimal(2**53)) for _ in range(n))
    assert chi_square(got, weights, n) < 13.82  # χ², 2 degrees of freedom, p = 0.001
    assert pick([(1, 1), (2, 1)], Decimal(0)) == 1 and pick([(1, 1), (2, 1)], Decimal("0.5")) == 2


def test_a_draws_random_number_reads_back_exactly_and_fits_its_column(monkeypatch):
    from jifen.mall import lottery

    for k in (0, 1, 302, 10**17 + 3, 10**18 - 1):
        monkeypatch.setattr(lottery.secrets, "randbelow", lambda n, k=k: k)
        u = lottery.uniform()
        assert 0 <= u < 1 and u == Decimal(k) / Decimal(10**18)
        assert len(str(u)) <= 32 and Decimal(str(u)) == u


@pytest.fixture
def shop(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "alice", "bob")
    fund(factory, "alice", 100_000)
    with keyed(TestClient(app)) as client:
        yield client, {"Authorization": f"Bearer {api_key(app, 'admin')}"}


def test_lottery_draws_caps_and_replay(shop, factory):
    client, admin = shop
    r = client.post("/v1/lotteries", json={"code": "spin", "name": "幸運大轉盤", "cost": 50, "budget": "100", "prizes": [
        {"name": "謝謝參與", "weight": 60},
        {"name": "20積分", "weight": 30, "points": 20},
        {"name": "電影票", "weight": 8, "stock": 3, "value": "30"},
        {"name": "耳機", "weight": 2, "value": "80"}]}, headers=admin)
    assert r.status_code == 201
    draws = [post(client, admin, "/v1/lotteries/spin/draw", {"member_id": "alice"}).json() for _ in range(300)]
    won = Counter(d["prize"] for d in draws)
    assert won["電影票"] <= 3  # stock
    assert 30 * won["電影票"] + 80 * won["耳機"] <= 100  # budget in ¥
    assert balance(client, admin, "alice")["available"] == 100_000 - 300 * 50 + 20 * won["20積分"]
    common = {"謝謝參與": 60, "20積分": 30}  # never capped: their shares follow the weights
    n = won["謝謝參與"] + won["20積分"]
    assert chi_square(Counter({k: won[k] for k in common}), common, n) < 23.9  # 1 d.f., p = 1e-6 (OS randomness)
    for d in draws[:20]:
        check = client.get(f"/v1/lotteries/spin/draws/{d['draw_id']}/verify", headers=admin).json()
        assert check["matches"] is True
    broke = post(client, admin, "/v1/lotteries/spin/draw", {"member_id": "bob"})
    assert broke.status_code == 409 and broke.json()["error"]["code"] == "insufficient_points"
    assert post(client, admin, "/v1/lotteries/nope/draw", {"member_id": "alice"}).status_code == 404


def test_partner_exchange_and_reconciliation(shop):
    client, admin = shop
    body = {"code": "air", "name": "東方航空", "unit": "里程", "points_per_unit_out": 100, "points_per_unit_in": 50,
            "min_units": 10, "max_units_per_day": 500}
    assert client.post("/v1/partners", json=body, headers=admin).status_code == 201
    out = post(client, admin, "/v1/partners/air/exchanges", {"member_id": "alice", "direction": "out", "units": 100,
                                                             "reference": "MU-1"})
    assert out.status_code == 201 and out.json()["points"] == 10_000
    inbound = post(client, admin, "/v1/partners/air/exchanges", {"member_id": "alice", "direction": "in", "units": 40,
                                                                 "reference": "MU-2"})
    assert inbound.json()["points"] == 2000
    assert balance(client, admin, "alice")["available"] == 100_000 - 10_000 + 2000
    for change, code in (({"units": 5, "reference": "MU-3"}, "below_minimum"),
                         ({"units": 100, "reference": "MU-1"}, "duplicate_reference"),
                         ({"units": 401, "reference": "MU-4"}, "limit_reached")):
        r = post(client, admin, "/v1/partners/air/exchanges", {"member_id": "alice", "direction": "out"} | change)
        assert r.json()["error"]["code"] == code
    window = {"from": (utcnow() - dt.timedelta(hours=1)).isoformat(), "to": (utcnow() + dt.timedelta(hours=1)).isoformat()}
    rows = client.get("/v1/partners/air/reconciliation", params=window, headers=admin).json()
    assert [r["reference"] for r in rows] == ["MU-1", "MU-2", "TOTAL out", "TOTAL in"]
    assert rows[2]["units"] == 100 and rows[3]["points"] == 2000
    csv_text = client.get("/v1/partners/air/reconciliation", params=window | {"format": "csv"}, headers=admin).text
    assert csv_text.splitlines()[0] == "reference,at,member_id,direction,units,points,entry_id"
    bad = client.get("/v1/partners/air/reconciliation", params={"from": window["to"], "to": window["from"]},
                     headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_period"


def test_supplier_settlement(mall):  # noqa: F811
    client, admin = mall
    r = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle", "address": ADDRESS}).json()
    post(client, admin, f"/v1/redemptions/{r['id']}/fulfil")
    coupons = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "c50", "quantity": 3}).json()
    post(client, admin, f"/v1/redemptions/{coupons['id']}/refund")
    window = {"from": (utcnow() - dt.timedelta(hours=1)).isoformat(), "to": (utcnow() + dt.timedelta(hours=1)).isoformat()}
    rows = client.get("/v1/reports/suppliers", params=window, headers=admin).json()
    assert rows == [{"supplier": "美的", "reward": "kettle", "name": "電熱水壺", "units": 1, "points": 3000,
                     "cost": "55.00"}]
    pos = {"Authorization": f"Bearer {api_key(client.app, 'pos')}"}
    assert client.get("/v1/reports/suppliers", params=window, headers=pos).status_code == 403
