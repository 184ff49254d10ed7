"""The points mall over HTTP: every redemption transition and refusal, coupons and their write-off,
the catalogue; on PostgreSQL a 200-client flash sale and racing tills."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from jifen.db import make_engine, make_sessionmaker, run_in_transaction, utcnow
from jifen.errors import JifenError
from jifen.flows.redeem import redeem
from jifen.ledger import operations as ops
from jifen.mall import service
from jifen.programs.service import get_program, get_wallet
from tests.conftest import Ledger, api_key, keyed, m
from tests.support.console_login import console_as
from tests.support.intake import add_members, configure
from tests.support.racing import outcomes

ADDRESS = {"name": "王小明", "phone": "13800001111", "line": "上海市浦東新區世紀大道100號"}


def fund(factory, member_id, points):
    Ledger(factory, now=utcnow()).run(lambda sc, s: ops.award(sc, m(sc, member_id), points))


@pytest.fixture
def mall(app, factory):
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "alice", "bob", "goldie")
    fund(factory, "alice", 10_000)
    fund(factory, "bob", 100)
    with keyed(TestClient(app)) as client:
        admin = {"Authorization": f"Bearer {api_key(app, 'admin')}"}
        soon = (utcnow() + dt.timedelta(hours=24)).isoformat()
        for body in (
            {"code": "kettle", "name": "電熱水壺", "kind": "physical", "category": "實物/家居/廚具", "points": 3000,
             "stock": 2, "per_member_limit": 1, "value": "89", "cost": "55", "supplier": "美的"},
            {"code": "c50", "name": "滿50減5 優惠券", "kind": "coupon", "category": "優惠券", "points": 500,
             "coupon": {"threshold": 50, "discount": 5, "valid_days": 30}},
            {"code": "vip", "name": "黑金專屬禮盒", "kind": "physical", "category": "實物", "points": 100,
             "min_tier": "gold"},
            {"code": "scarce", "name": "聯名限量款", "kind": "physical", "category": "實物/潮玩", "points": 100,
             "starts_at": soon, "early_access_tier": "gold", "early_access_hours": 48},
        ):
            assert client.post("/v1/rewards", json=body, headers=admin).status_code == 201
        yield client, admin


_keys = iter(range(10**9))


def post(client, headers, path, body=None):
    return client.post(path, json=body, headers=headers | {"Idempotency-Key": f"k{next(_keys)}"})


def balance(client, headers, member_id):
    return client.get(f"/v1/members/{member_id}/balance", headers=headers).json()


def test_physical_redemption_held_fulfilled_refunded(mall, factory):
    client, admin = mall
    r = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle", "address": ADDRESS})
    assert r.status_code == 201 and r.json()["status"] == "held"
    rid = r.json()["id"]
    b = balance(client, admin, "alice")
    assert (b["available"], b["held"]) == (7000, 3000)
    assert post(client, admin, f"/v1/redemptions/{rid}/fulfil").json()["status"] == "fulfilled"
    assert balance(client, admin, "alice")["held"] == 0
    again = post(client, admin, f"/v1/redemptions/{rid}/fulfil")
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"
    assert post(client, admin, f"/v1/redemptions/{rid}/cancel").status_code == 409
    refunded = post(client, admin, f"/v1/redemptions/{rid}/refund")
    assert refunded.json()["status"] == "refunded" and balance(client, admin, "alice")["available"] == 10_000
    assert post(client, admin, f"/v1/redemptions/{rid}/refund").status_code == 409
    kettle = [x for x in client.get("/v1/rewards", headers=admin).json() if x["code"] == "kettle"][0]
    assert (kettle["stock"], kettle["sold"]) == (2, 0)
    assert Ledger(factory).verify() == []


def test_cancel_releases_points_and_stock(mall, factory):
    client, admin = mall
    rid = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle",
                                                   "address": ADDRESS}).json()["id"]
    assert post(client, admin, f"/v1/redemptions/{rid}/cancel").json()["status"] == "cancelled"
    assert balance(client, admin, "alice")["available"] == 10_000
    assert post(client, admin, f"/v1/redemptions/{rid}/fulfil").json()["error"]["code"] == "illegal_transition"
    assert client.get(f"/v1/redemptions/{rid}", headers=admin).json()["status"] == "cancelled"
    assert Ledger(factory).verify() == []


@pytest.mark.parametrize("body, status, code", [
    ({"member_id": "bob", "reward": "kettle", "address": ADDRESS}, 409, "insufficient_points"),
    ({"member_id": "alice", "reward": "kettle"}, 422, "address_required"),
    ({"member_id": "alice", "reward": "kettle", "quantity": 2, "address": ADDRESS}, 409, "limit_reached"),
    ({"member_id": "alice", "reward": "vip", "address": ADDRESS}, 403, "not_eligible"),
    ({"member_id": "alice", "reward": "scarce", "address": ADDRESS}, 409, "not_on_sale"),
    ({"member_id": "alice", "reward": "nope"}, 404, "unknown_reward"),
    ({"member_id": "nobody", "reward": "c50"}, 404, "unknown_member"),
    ({"member_id": "alice", "reward": "c50", "quantity": 0}, 422, "invalid_request"),
])
def test_refusals_say_why_and_change_nothing(mall, body, status, code):
    client, admin = mall
    r = post(client, admin, "/v1/redemptions", body)
    assert r.status_code == status and r.json()["error"]["code"] == code, r.json()
    b = balance(client, admin, "alice")
    assert (b["available"], b["held"]) == (10_000, 0)
    kettle = [x for x in client.get("/v1/rewards", headers=admin).json() if x["code"] == "kettle"][0]
    assert (kettle["stock"], kettle["sold"]) == (2, 0)


def test_out_of_stock_and_tier_access(mall, factory):
    client, admin = mall
    add_members(factory, "carol", "dave")
    for who in ("carol", "dave"):
        fund(factory, who, 5000)
    for who in ("alice", "carol"):
        assert post(client, admin, "/v1/redemptions", {"member_id": who, "reward": "kettle",
                                                       "address": ADDRESS}).status_code == 201
    late = post(client, admin, "/v1/redemptions", {"member_id": "dave", "reward": "kettle", "address": ADDRESS})
    assert late.status_code == 409 and late.json()["error"]["code"] == "out_of_stock"
    assert balance(client, admin, "dave")["available"] == 5000
    # A gold member sees the scarce item 48 hours early and may buy tier-only rewards.
    run_in_transaction(factory, lambda s: setattr(m(ops.Scope(s, get_program(s, "default"), None, utcnow()),
                                                    "goldie"), "tier", "gold"))
    fund(factory, "goldie", 1000)
    for code in ("scarce", "vip"):
        assert post(client, admin, "/v1/redemptions", {"member_id": "goldie", "reward": code,
                                                       "address": ADDRESS}).status_code == 201
    seen = {x["code"]: x["eligible"] for x in client.get("/v1/rewards?member_id=alice", headers=admin).json()}
    assert seen == {"kettle": True, "c50": True, "vip": False, "scarce": False}


def test_coupons_issue_and_write_off_once(mall, factory):
    client, admin = mall
    r = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "c50", "quantity": 2}).json()
    assert r["status"] == "fulfilled" and len(r["coupons"]) == 2  # coupons are delivered at once
    code = r["coupons"][0]["code"]
    assert len(code) == 16 and code.isalnum() and r["coupons"][0]["code"] != r["coupons"][1]["code"]
    till = {"Authorization": f"Bearer {api_key(client.app, 'pos')}"}
    used = client.post(f"/v1/coupons/{code}/redeem", json={"merchant": "上海旗艦店", "store": "S001"}, headers=till)
    assert used.status_code == 200 and used.json()["status"] == "used"
    twice = client.post(f"/v1/coupons/{code}/redeem", json={"merchant": "上海旗艦店"}, headers=till)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "coupon_used"
    assert client.post("/v1/coupons/NOPE/redeem", json={"merchant": "x"}, headers=till).status_code == 404
    refused = post(client, admin, f"/v1/redemptions/{r['id']}/refund")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "coupon_used"
    with factory() as s, s.begin():
        with pytest.raises(JifenError, match="expired"):
            service.write_off(s, get_program(s, "default"), r["coupons"][1]["code"], "x", None,
                              utcnow() + dt.timedelta(days=31))
    assert balance(client, admin, "alice")["available"] == 9000


def test_catalogue_filters_and_sorts(mall):
    client, admin = mall
    names = [x["code"] for x in client.get("/v1/rewards?category=實物&sort=points", headers=admin).json()]
    assert names == ["vip", "scarce", "kettle"]  # points ascending (vip and scarce tie at 100: by id)
    assert [x["code"] for x in client.get("/v1/rewards?q=優惠", headers=admin).json()] == ["c50"]
    bad = client.post("/v1/rewards", json={"code": "x", "name": "x", "kind": "car", "points": 1}, headers=admin)
    assert bad.status_code == 422


def test_flash_sale_never_oversells_on_postgresql(pg_only_url):
    """200 clients race for 5 units: exactly 5 orders, no loser's points touched, ledger clean."""
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    members = [f"f{i}" for i in range(200)]
    add_members(factory, *members)

    def setup(s):
        program = get_program(s, "default")
        sc = ops.Scope(s, program, get_wallet(s, program, None), utcnow())
        for mid in members:
            ops.award(sc, m(sc, mid), 1000)
        from jifen.mall.models import Reward

        s.add(Reward(program_id=program.id, code="flash", name="秒殺", kind="virtual", points=800, stock=5, sold=0,
                     active=True, coupon={}, created_at=utcnow()))

    run_in_transaction(factory, setup)

    def client(mid):
        def tx(s):
            program = get_program(s, "default")
            sc = ops.Scope(s, program, get_wallet(s, program, None), utcnow())
            return redeem(sc, m(sc, mid), service.get_reward(s, program, "flash"), 1).id

        run_in_transaction(factory, tx)

    assert Counter(outcomes(client, members, win="won")) == {"won": 5, "out_of_stock": 195}
    led = Ledger(factory)
    spent = sorted(led.balances(mid)["available"] for mid in members)
    assert spent == [200] * 5 + [1000] * 195
    with factory() as s:
        from jifen.mall.models import Reward

        reward = s.query(Reward).filter_by(code="flash").one()
        assert (reward.stock, reward.sold) == (0, 5)
    assert led.verify() == []
    engine.dispose()


def test_racing_tills_write_a_coupon_off_once_on_postgresql(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, {"pending_days": {}}, now=utcnow() - dt.timedelta(days=1))
    add_members(factory, "alice")
    fund(factory, "alice", 1000)

    def setup(s):
        from jifen.mall.models import Reward

        program = get_program(s, "default")
        s.add(Reward(program_id=program.id, code="c5", name="券", kind="coupon", points=100, stock=None, sold=0,
                     active=True, coupon={"valid_days": 7}, created_at=utcnow()))
        s.flush()
        sc = ops.Scope(s, program, get_wallet(s, program, None), utcnow())
        r = redeem(sc, m(sc, "alice"), service.get_reward(s, program, "c5"), 1)
        from jifen.mall.models import Coupon

        return s.query(Coupon).filter_by(redemption_id=r.id).one().code

    code = run_in_transaction(factory, setup)

    def till(n):
        run_in_transaction(factory, lambda s: service.write_off(s, get_program(s, "default"), code, f"till{n}",
                                                                None, utcnow()))

    assert Counter(outcomes(till, range(30), win="used")) == {"used": 1, "coupon_used": 29}
    engine.dispose()


def test_prices_points_cash_discounts_double_value_days(mall, factory):
    from jifen.mall.models import Reward

    client, admin = mall
    r = client.post("/v1/rewards", json={"code": "cup", "name": "保溫杯", "kind": "virtual", "category": "實物/家居",
                                         "points": 3000, "cash_points": 1000, "cash": "20", "discount_pct": 20},
                    headers=admin)
    assert r.status_code == 201
    with factory() as s:
        program = get_program(s, "default")
        cup = s.query(Reward).filter_by(code="cup").one()
        wednesday = dt.datetime(2026, 11, 11, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai, a Wednesday, the 11th
        assert service.unit_price(program, cup, wednesday) == (2400, 0)  # 20 % off
        assert service.unit_price(program, cup, wednesday, "points_cash") == (800, 20)
        program.double_value = {"days_of_month": [11], "factor": 2}
        assert service.unit_price(program, cup, wednesday)[0] == 1200  # double-value day: half the points
        assert service.unit_price(program, cup, wednesday + dt.timedelta(days=1))[0] == 2400
    mixed = post(client, admin, "/v1/redemptions", {"member_id": "bob", "reward": "cup", "pay": "points_cash"})
    assert mixed.status_code == 409  # bob has 100 points: not even the points part
    paid = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "cup", "pay": "points_cash"})
    body = paid.json()
    assert (body["points"], body["cash"], body["status"]) == (800, "20.00", "held")  # held until the cash is paid
    nope = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "c50", "pay": "points_cash"})
    assert nope.json()["error"]["code"] == "no_cash_price"


def test_refusals_suggest_alternatives(mall, factory):
    client, admin = mall
    client.post("/v1/rewards", json={"code": "pan", "name": "不粘鍋", "kind": "physical", "category": "實物/家居/廚具",
                                     "points": 80, "stock": 5}, headers=admin)
    client.post("/v1/rewards", json={"code": "kettle2", "name": "電熱水壺 (積分+現金)", "kind": "physical",
                                     "category": "實物/家居", "points": 5000, "cash_points": 90, "cash": "49"},
                headers=admin)
    r = post(client, admin, "/v1/redemptions", {"member_id": "bob", "reward": "kettle2", "address": ADDRESS})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "insufficient_points"
    assert err["points_cash"] == {"points": 90, "cash": "49.00"}  # bob's 100 points cover the points part
    assert [x["reward"] for x in err["suggestions"]] == ["pan"]  # what else 100 points buy in 實物


def test_daily_limits_and_tier_shares(mall, factory):
    client, admin = mall
    client.post("/v1/rewards", json={"code": "tea", "name": "茶包", "kind": "virtual", "category": "食品",
                                     "points": 10, "per_day_limit": 2}, headers=admin)
    client.post("/v1/rewards", json={"code": "toy", "name": "限量公仔", "kind": "virtual", "category": "潮玩",
                                     "points": 10, "stock": 10, "tier_shares": {"normal": "0.2"}}, headers=admin)
    assert post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "tea", "quantity": 2}).status_code == 201
    again = post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "tea"})
    assert again.json()["error"]["code"] == "limit_reached"
    add_members(factory, "carol")
    fund(factory, "carol", 1000)
    for who in ("alice", "carol"):  # 普通 members share 20 % of 10 units
        run_in_transaction(factory, lambda s, who=who: setattr(
            m(ops.Scope(s, get_program(s, "default"), None, utcnow()), who), "tier", "normal"))
    assert post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "toy"}).status_code == 201
    assert post(client, admin, "/v1/redemptions", {"member_id": "carol", "reward": "toy"}).status_code == 201
    third = post(client, admin, "/v1/redemptions", {"member_id": "carol", "reward": "toy"})
    assert third.status_code == 409 and "share" in third.json()["error"]["message"]
    run_in_transaction(factory, lambda s: setattr(
        m(ops.Scope(s, get_program(s, "default"), None, utcnow()), "goldie"), "tier", "gold"))
    fund(factory, "goldie", 100)
    assert post(client, admin, "/v1/redemptions", {"member_id": "goldie", "reward": "toy"}).status_code == 201


def test_console_mall_page(mall):
    client, admin = mall
    post(client, admin, "/v1/redemptions", {"member_id": "alice", "reward": "kettle", "address": ADDRESS})
    console_as(client, client.app, "admin")
    page = client.get("/console/mall").text
    assert "電熱水壺" in page and "實物/家居/廚具" in page and "处理中" in page and "美的" in page
