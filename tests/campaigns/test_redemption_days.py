"""Double-value redemption days (a campaign's `double_value` effect): on its days the members it reaches pay
⌈P ÷ 2⌉ for a reward priced P; the order records the campaign and the points saved, a refund returns exactly
what was paid, the saving is counted against the campaign's budget (a hard stop: then the normal price) and
the sponsor's share of it is in the campaign report and the co-funding settlement."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from jifen.campaigns import report, service
from jifen.campaigns.schemas import CampaignChange
from jifen.flows import pricing
from jifen.flows.redeem import redeem
from jifen.ledger import operations as ops
from jifen.mall import service as mall
from jifen.mall.api import RewardIn
from jifen.programs.service import get_program
from jifen.rules import budgets
from jifen.rules.audience import Audience
from jifen.rules.service import doc_of, in_force
from tests.campaigns.test_campaigns import DAY, campaign, launch, run
from tests.conftest import NOW, Ledger, m
from tests.support.intake import add_members, configure

MONDAY = 1  # NOW, 2026-06-01 12:00 in Shanghai, is a Monday
PRICE, HALF = 301, 151  # an odd price rounds up: the member pays the half point


def shop(factory, *members: str, points: int = 1_000) -> None:
    configure(factory, {"pending_days": {}}, now=NOW - 2 * DAY)
    add_members(factory, *members)
    for mid in members:
        Ledger(factory, now=NOW - DAY).run(lambda sc, s, mid=mid: ops.award(sc, m(sc, mid), points))
    reward = RewardIn(code="mug", name="馬克杯", kind="virtual", category="實物", points=PRICE)
    run(factory, lambda s, p: mall.add_reward(s, p.id, reward.model_dump(), NOW - 2 * DAY))


def halfprice(**fields):
    return campaign(**{"code": "half", "name": "積分價值翻倍日", "effect": {"double_value": {"weekdays": [MONDAY]}},
                       "budget": 10**6} | fields)


def price_at(factory, member_id: str, at: dt.datetime) -> mall.Price:
    with factory() as s:
        program = get_program(s, "default")
        sc = ops.Scope(s, program, None, at)
        return pricing.price(s, program, m(sc, member_id), mall.get_reward(s, program, "mug"), at)


def buy(factory, member_id: str, at=NOW):
    return Ledger(factory, now=at).run(lambda sc, s: mall_view(redeem(sc, m(sc, member_id),
                                                                      mall.get_reward(s, sc.program, "mug"), 1)))


def mall_view(r):
    return {"id": r.id, "points": r.points, "campaign": r.campaign, "saved": r.points_saved,
            "sponsored": r.sponsored, "status": r.status}


def available(factory, member_id: str) -> int:
    return Ledger(factory, now=NOW + 3 * DAY).run(lambda sc, s: ops.available(s, m(sc, member_id), sc.wallet))


def used(factory) -> int:
    return run(factory, lambda s, p: budgets.used(s, p.id, "campaign_half"))


@pytest.mark.parametrize("effect", [
    {"double_value": {"weekdays": [8]}}, {"double_value": {"days_of_month": [0]}}, {"double_value": {"factor": 1}},
    {"double_value": {}, "multiplier": 2}, {"double_value": {}, "events": ["purchase"]},
    {"double_value": {}, "categories": ["實物"]}, {"double_value": {"weekdays": [1], "colour": "red"}}])
def test_a_bad_double_value_effect_is_refused(effect):
    with pytest.raises(ValidationError):
        halfprice(effect=effect)


def test_the_reached_members_pay_half_on_the_campaigns_days_only(factory):
    ids = [f"m{i:02d}" for i in range(30)]
    shop(factory, *ids)
    body = halfprice(holdout="0.3", rollout="0.5")
    run(factory, lambda s, p: service.create(s, p, body, now=NOW - DAY, actor="t"))
    assert {price_at(factory, mid, NOW).points for mid in ids} == {PRICE}  # a draft offers nothing
    run(factory, lambda s, p: service.launch(s, p, service.get(s, p.id, "half"), now=NOW - DAY, actor="t"))
    aud = Audience(key="campaign:half", share=Decimal("0.5"), holdout=Decimal("0.3"))
    got = {mid: price_at(factory, mid, NOW) for mid in ids}
    assert {mid: p.points for mid, p in got.items()} == {
        mid: HALF if aud.group(mid, None, {}) == "treated" else PRICE for mid in ids}
    reached = next(mid for mid in ids if aud.group(mid, None, {}) == "treated")
    assert (got[reached].normal, got[reached].saved, got[reached].offer.campaign) == (PRICE, PRICE - HALF, "half")
    assert {"holdout", "waiting"} <= {aud.group(mid, None, {}) for mid in ids if got[mid].points == PRICE}
    assert price_at(factory, reached, NOW + DAY / 2).points == PRICE  # Tuesday: not one of its days
    with factory() as s:  # no member (the console's catalogue): the catalogue price
        program = get_program(s, "default")
        assert pricing.price(s, program, None, mall.get_reward(s, program, "mug"), NOW).points == PRICE
    run(factory, lambda s, p: service.stop(s, p, service.get(s, p.id, "half"), now=NOW, actor="t"))
    assert price_at(factory, reached, NOW + dt.timedelta(minutes=1)).points == PRICE  # ended


def test_an_order_on_the_day_refunded_after_it_returns_exactly_what_was_paid(factory):
    shop(factory, "a")
    launch(factory, halfprice(), now=NOW - DAY)
    order = buy(factory, "a")
    assert order == {"id": order["id"], "points": HALF, "campaign": "half", "saved": PRICE - HALF, "sponsored": 0,
                     "status": "fulfilled"}
    assert available(factory, "a") == 1_000 - HALF and used(factory) == PRICE - HALF
    after = NOW + 3 * DAY  # the campaign is over: a refund still returns the discounted price, not the list one
    Ledger(factory, now=after).run(lambda sc, s: mall.refund(sc, mall.get_redemption(s, sc.program, order["id"])))
    assert available(factory, "a") == 1_000
    assert used(factory) == 0  # the saving went back to the budget
    assert Ledger(factory).verify() == []


def test_the_budget_is_a_hard_stop_and_the_report_and_settlement_count_the_saving(factory):
    shop(factory, "a", "b", "c", "d")
    saving = PRICE - HALF
    launch(factory, halfprice(budget=2 * saving + saving // 2, sponsor={"name": "伊利", "share": "0.5"}), now=NOW - DAY)
    orders = [buy(factory, mid) for mid in ("a", "b", "c")]
    assert [o["points"] for o in orders] == [HALF, HALF, PRICE]  # the third saving no longer fits: normal price
    assert [o["campaign"] for o in orders] == ["half", "half", None]
    assert [o["sponsored"] for o in orders] == [75, 75, 0]  # half of 150 saved
    assert used(factory) == 2 * saving
    assert price_at(factory, "d", NOW).points == PRICE  # what is left of the budget covers no saving
    got = run(factory, lambda s, p: report.report(s, p, service.get(s, p.id, "half"), NOW + DAY))
    assert got["cost"] == {"points": 2 * saving, "liability_yuan": "3.00", "sponsor": "伊利", "sponsored_points": 150,
                           "sponsored_yuan": "1.50", "brand_points": 150, "brand_yuan": "1.50",
                           "discounted_orders": 2, "points_saved": 2 * saving}
    assert got["participants"] == 2
    assert got["budget"] == {"points": 2 * saving + saving // 2, "used": 2 * saving, "left": saving // 2}
    settled = run(factory, lambda s, p: report.co_funding(s, p, NOW - DAY, NOW + DAY))
    assert settled == [{"sponsor": "伊利", "campaign": "half", "points": 300, "sponsored_points": 150,
                        "owed_yuan": "1.50"}]
    # A refund takes the order out of the settlement and gives its saving back: the next order gets it.
    Ledger(factory, now=NOW).run(lambda sc, s: mall.refund(sc, mall.get_redemption(s, sc.program, orders[0]["id"])))
    assert run(factory, lambda s, p: report.co_funding(s, p, NOW - DAY, NOW + DAY))[0]["sponsored_points"] == 75
    assert buy(factory, "d")["points"] == HALF
    # A bigger budget reopens the offer (the same PATCH as for earning campaigns; no rule is published).
    run(factory, lambda s, p: service.change(s, p, service.get(s, p.id, "half"), CampaignChange(budget=10**6),
                                             now=NOW, actor="t"))
    assert buy(factory, "c")["points"] == HALF
    assert Ledger(factory).verify() == []


def test_a_double_value_campaign_publishes_no_rule(factory):
    shop(factory, "a")
    view = launch(factory, halfprice(), now=NOW - DAY)
    assert view["status"] == "live"
    assert view["effect"] == {"double_value": {"days_of_month": [], "weekdays": [MONDAY], "factor": "2"}}
    codes = run(factory, lambda s, p: [r.code for r in doc_of(in_force(s, p, NOW)).rules])
    assert codes and "campaign_half" not in codes  # the seed's rules are in force, the campaign gives no points
