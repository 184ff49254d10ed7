"""Event intake on both databases: real-time awards, idempotent replays, batches, refunds, pending
points, counters, caps, rule versions, several wallets."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from jifen.errors import Conflict, IdempotencyConflict, InvalidRequest, NotFound
from jifen.ledger import operations as ops
from jifen.ledger.models import JournalEntry
from tests.conftest import NOW, Ledger, m
from tests.support.intake import add_members, configure, event, send, send_one

DAY = dt.timedelta(days=1)


@pytest.fixture
def seed001(factory):
    configure(factory)
    add_members(factory, "alice", "bob")
    return factory


def entries(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(JournalEntry))


def test_a_purchase_is_awarded_in_the_same_request(seed001):
    r = send_one(seed001, "alice", amount="250.80", order_id="SO1")
    assert r["status"] == "processed" and r["points"] == 275
    assert [(x["rule"], x["points"]) for x in r["rules"]] == [("purchase_base", 250), ("big_order_bonus", 25)]
    assert r["entries"][0]["points"] == 275 and r["rule_version"] == 1
    led = Ledger(seed001)
    assert led.balances("alice")["pending"] == 275  # purchase points wait out the 7-day return window
    later = Ledger(seed001, now=NOW + 7 * DAY)  # the window closes: the next look at the member matures them
    later.run(lambda sc, s: ops.settle_member(sc, sc.wallet, m(sc, "alice").id))
    assert later.balances("alice")["available"] == 275 and later.balances("alice")["pending"] == 0
    assert led.verify() == []


def test_replays_return_the_first_result_and_change_nothing(seed001):
    first = send_one(seed001, "alice", amount=120, order_id="SO1", event_id="pos-1")
    before = entries(seed001)
    again = send_one(seed001, "alice", amount=120, order_id="SO1", event_id="pos-1")
    assert again["status"] == "replayed"
    assert {k: v for k, v in again.items() if k != "status"} == {k: v for k, v in first.items() if k != "status"}
    assert entries(seed001) == before
    with pytest.raises(IdempotencyConflict):
        send_one(seed001, "alice", amount=999, order_id="SO1", event_id="pos-1")
    assert entries(seed001) == before


def test_bad_events_are_refused_and_change_nothing(seed001):
    before = entries(seed001)
    with pytest.raises(NotFound, match="unknown member"):
        send_one(seed001, "nobody", amount=10)
    with pytest.raises(InvalidRequest, match="future"):
        send_one(seed001, "alice", amount=10, at=NOW + dt.timedelta(hours=1), now=NOW)
    send_one(seed001, "alice", amount=10, order_id="SO9")
    with pytest.raises(Conflict, match="already sent"):
        send_one(seed001, "alice", amount=10, order_id="SO9")
    assert entries(seed001) == before + 1


def test_a_batch_gives_each_event_its_result_and_matches_one_by_one(seed001):
    add_members(seed001, "carol", "dave")
    batch = [event("alice", amount=150, order_id="A1", at=NOW - 3 * DAY),
             event("nobody", amount=10),
             event("alice", "check_in", at=NOW - 2 * DAY),
             event("alice", amount=80, order_id="A2", at=NOW - DAY)]
    results = send(seed001, *batch, strict=False)
    assert [r["status"] for r in results] == ["processed", "rejected", "processed", "processed"]
    assert results[1]["error"]["code"] == "unknown_member"
    one_by_one = [send(seed001, e.model_copy(update={"event_id": e.event_id + "-b", "member_id": "carol",
                                                     "order_id": e.order_id and e.order_id + "b"}))[0]
                  for e in (batch[0], batch[2], batch[3])]
    assert [r["points"] for r in one_by_one] == [results[0]["points"], results[2]["points"], results[3]["points"]]
    assert Ledger(seed001).verify() == []


def test_check_in_daily_points_and_the_seventh_day_bonus(seed001):
    points = []
    for day in range(9):
        at = NOW + day * DAY
        points.append(send_one(seed001, "alice", "check_in", at=at)["points"])
        if day == 2:  # a second check-in the same day earns nothing
            assert send_one(seed001, "alice", "check_in", at=at + dt.timedelta(hours=3))["points"] == 0
    assert points == [5, 5, 5, 5, 5, 5, 55, 5, 5]
    # A missed day starts the streak again: seven more days to the next bonus.
    restart = [send_one(seed001, "alice", "check_in", at=NOW + (10 + d) * DAY)["points"] for d in range(7)]
    assert restart == [5] * 6 + [55]


def test_streaks_follow_the_programme_calendar(seed001):
    # 23:30 and 00:30 Shanghai time are two calendar days, though an hour apart.
    first = dt.datetime(2026, 6, 1, 15, 30, tzinfo=dt.UTC)
    for d in range(6):
        send_one(seed001, "bob", "check_in", at=first + d * DAY)
    assert send_one(seed001, "bob", "check_in", at=first + 5 * DAY + dt.timedelta(hours=1))["points"] == 55


def test_invite_a_friend_who_registers(seed001):
    assert send_one(seed001, "alice", "invite", attributes={"invitee": "bob"})["points"] == 50
    assert send_one(seed001, "alice", "invite")["points"] == 0  # no registered friend named


def test_browse_counter_and_member_caps(factory):
    cfg = {"rules": {"rules": [
        {"code": "browse_10", "events": ["browse"], "award": {"fixed": 50},
         "condition": 'event.attributes.seconds >= 3 && count("browse", "day") == 10'},
        {"code": "share", "events": ["share"], "award": {"fixed": 15}, "caps": {"day": 30, "lifetime": 75}}]}}
    configure(factory, cfg)
    add_members(factory, "alice")
    got = [send_one(factory, "alice", "browse", at=NOW + dt.timedelta(minutes=i), attributes={"seconds": 5})["points"]
           for i in range(11)]
    assert got == [0] * 9 + [50, 0]  # seed 003: ten views of 3 s or more → 50 points, once a day
    shares = [send_one(factory, "alice", "share", at=NOW + d * DAY + dt.timedelta(minutes=i))
              for d in range(3) for i in range(3)]
    assert [r["points"] for r in shares] == [15, 15, 0, 15, 15, 0, 15, 0, 0]  # 30 a day, 75 in a lifetime
    assert shares[6]["rules"][0] == {"rule": "share", "layer": "base", "wallet": None, "points": 15}
    assert shares[7]["rules"][0]["capped_from"] == 15


def test_global_budget_is_shared_by_all_members(factory):
    configure(factory, {"rules": {"budgets": {"launch": 100}, "rules": [
        {"code": "launch", "events": ["register"], "award": {"fixed": 40}, "budget": "launch"}]}})
    add_members(factory, "a", "b", "c", "d")
    assert [send_one(factory, m, "register")["points"] for m in "abcd"] == [40, 40, 20, 0]


def test_rule_versions_apply_by_the_time_an_event_happened(factory):
    configure(factory, now=NOW - 30 * DAY)
    add_members(factory, "alice")
    double = {"rules": {"effective_from": (NOW - DAY).isoformat(), "note": "double points", "rules": [
        {"code": "purchase_base", "events": ["purchase"], "award": {"per_yuan": 2}}]}}
    assert configure(factory, double, now=NOW - 2 * DAY)["rule_version"] == 2
    assert configure(factory, double, now=NOW - 2 * DAY)["rule_version"] is None  # unchanged: no new version
    old = send_one(factory, "alice", amount=50, at=NOW - 2 * DAY, now=NOW)
    new = send_one(factory, "alice", amount=50, at=NOW, now=NOW)
    assert (old["rule_version"], old["points"]) == (1, 50)
    assert (new["rule_version"], new["points"]) == (2, 100)


def test_refunds_take_back_points_in_proportion(seed001):
    send_one(seed001, "alice", amount=200, order_id="SO1")  # 200 + 20 = 220 points
    part = send_one(seed001, "alice", "refund", amount=60, order_id="SO1")  # 30%
    assert part["points"] == -66 and part["refund_of"]
    rest = send_one(seed001, "alice", "refund", amount=140, order_id="SO1")
    assert rest["points"] == -154  # together exactly the 220 the order earned
    b = Ledger(seed001).balances("alice")
    assert b["pending"] == 0 and b["available"] == 0
    with pytest.raises(Conflict, match="fully refunded"):
        send_one(seed001, "alice", "refund", amount=1, order_id="SO1")
    assert Ledger(seed001).verify() == []


def test_partial_refunds_round_cumulatively(seed001):
    send_one(seed001, "alice", amount=99, order_id="SO2")  # 99 points
    got = [send_one(seed001, "alice", "refund", amount=33, order_id="SO2")["points"] for _ in range(3)]
    assert got == [-33, -33, -33]
    send_one(seed001, "alice", amount=10, order_id="SO3")
    thirds = [send_one(seed001, "alice", "refund", amount=a, order_id="SO3")["points"] for a in ("3.33", "3.33", "3.34")]
    assert sum(thirds) == -10 and thirds == [-3, -4, -3]  # round(3.33), round(6.66) - 3, 10 - 7


def test_bad_refunds(seed001):
    send_one(seed001, "alice", amount=50, order_id="SO1")
    before = entries(seed001)
    with pytest.raises(NotFound, match="no purchase"):
        send_one(seed001, "alice", "refund", amount=10, order_id="NOPE")
    with pytest.raises(InvalidRequest, match="order_id"):
        send_one(seed001, "alice", "refund", amount=10)
    with pytest.raises(Conflict, match="exceeds"):
        send_one(seed001, "alice", "refund", amount="50.01", order_id="SO1")
    with pytest.raises(Conflict, match="another member"):
        send_one(seed001, "bob", "refund", amount=10, order_id="SO1")
    assert entries(seed001) == before


def test_a_refund_after_the_points_were_spent_leaves_debt_only_where_allowed(factory):
    configure(factory, {"pending_days": {}, "allow_debt": True})
    add_members(factory, "alice")
    send_one(factory, "alice", amount=100, order_id="SO1")
    Ledger(factory).run(lambda sc, s: ops.spend(sc, m(sc, "alice"), 80))
    assert send_one(factory, "alice", "refund", order_id="SO1")["points"] == -100  # no amount: the rest
    assert Ledger(factory).balances("alice")["debt"] == -80
    assert Ledger(factory).verify() == []


def test_two_wallets(factory):
    configure(factory, {"wallets": [{"code": "platform", "name": "平台"}, {"code": "brand", "name": "品牌"}],
                        "tiers": None, "pending_days": {},
                        "rules": {"rules": [
                            {"code": "platform", "events": ["purchase"], "award": {"per_yuan": 1}},
                            {"code": "brand", "events": ["purchase"], "wallet": "brand", "award": {"per_yuan": "0.5"}}]}})
    add_members(factory, "alice")
    r = send_one(factory, "alice", amount="99.90", order_id="X1")
    assert sorted((e["wallet"], e["points"]) for e in r["entries"]) == [("brand", 49), ("points", 99)]
    send_one(factory, "alice", "refund", amount="49.95", order_id="X1")
    assert Ledger(factory).balances("alice", "brand")["available"] == 49 - 25
    assert Ledger(factory).balances("alice")["available"] == 99 - 50
    assert Ledger(factory).verify() == []


def test_refunds_give_back_caps_and_budgets(factory):
    configure(factory, {"pending_days": {}, "rules": {"budgets": {"promo": 100}, "rules": [
        {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}, "caps": {"day": 150}},
        {"code": "promo", "events": ["purchase"], "award": {"fixed": 60}, "budget": "promo"}]}})
    add_members(factory, "alice", "bob")
    first = send_one(factory, "alice", amount=120, order_id="A1")
    assert [(r["rule"], r["points"]) for r in first["rules"]] == [("base", 120), ("promo", 60)]
    capped = send_one(factory, "alice", amount=100, order_id="A2")
    assert [(r["rule"], r["points"]) for r in capped["rules"]] == [("base", 30), ("promo", 40)]
    assert send_one(factory, "alice", "refund", amount=60, order_id="A1")["points"] == -90  # half of 180
    # Half of A1's 120 base points and 30 of its promo points are free again, the same day.
    again = send_one(factory, "alice", amount=100, order_id="A3")
    assert [(r["rule"], r["points"]) for r in again["rules"]] == [("base", 60), ("promo", 30)]
    assert send_one(factory, "bob", amount=10, order_id="B1")["rules"] == [
        {"rule": "base", "layer": "base", "wallet": None, "points": 10}, {"rule": "promo", "layer": "base",
                                                                          "wallet": None, "points": 0,
                                                                          "capped_from": 60}]
    assert Ledger(factory).verify() == []
