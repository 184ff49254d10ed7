"""Campaigns through the event intake: the target, rollout and holdout decide who earns the campaign's
points, the budget stops it, the sponsor's share is settled, and the report compares reached members
with the holdout."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from jifen.campaigns import report, service
from jifen.campaigns.schemas import CampaignChange, CampaignIn, MemberList
from jifen.db import run_in_transaction
from jifen.errors import Conflict, InvalidRequest
from jifen.members.service import get_member
from jifen.programs.service import get_program
from jifen.rules.audience import Audience, bucket
from tests.conftest import NOW, Ledger
from tests.support.intake import add_members, configure, event, send

BASE = {"pending_days": {}, "rules": {"rules": [
    {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}}]}}
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def campaign(**fields) -> CampaignIn:
    return CampaignIn.model_validate({"code": "double", "name": "雙倍積分", "starts_at": NOW - DAY, "ends_at": NOW + DAY,
                                      "effect": {"multiplier": 2}, "budget": 10**6} | fields)


def run(factory, fn):
    return run_in_transaction(factory, lambda s: fn(s, get_program(s, "default")))


def launch(factory, body: CampaignIn, now=NOW):
    return run(factory, lambda s, p: service.view(service.launch(s, p, service.create(s, p, body, now=now, actor="t"),
                                                                 now=now, actor="t")))


def groups(aud: Audience, ids):
    return {m: aud.group(m, None, {}) for m in ids}


def test_the_hash_is_stable_and_uniform_and_rollout_only_adds_members():
    ids = [f"m{i}" for i in range(4000)]
    assert bucket("campaign:x", "m1") == bucket("campaign:x", "m1") != bucket("campaign:y", "m1")
    values = [bucket("k", m) for m in ids]
    assert all(0 <= v < 1 for v in values)
    assert abs(sum(v < 0.25 for v in values) / len(ids) - 0.25) < 0.03  # 4,000 draws: ±3 points is 4.4 sigma
    ten = groups(Audience(key="k", share=Decimal("0.1"), holdout=Decimal("0.2")), ids)
    half = groups(Audience(key="k", share=Decimal("0.5"), holdout=Decimal("0.2")), ids)
    assert {m for m, g in ten.items() if g == "treated"} < {m for m, g in half.items() if g == "treated"}
    assert {m for m, g in ten.items() if g == "holdout"} == {m for m, g in half.items() if g == "holdout"}
    assert Audience(key="k", tiers=["gold"]).group("m1", "silver", {}) == "outside"
    assert Audience(key="k", segments=["高價值"], tags=["vip"]).group("m1", None, {"segments": ["高價值"]}) == "outside"
    assert Audience(key="k", segments=["高價值"], tags=["vip"]).group(
        "m1", None, {"segments": ["高價值"], "tags": ["vip"]}) == "treated"


def test_double_points_reach_the_rollout_not_the_holdout_and_the_report_counts_them(factory):
    configure(factory, BASE)
    ids = [f"m{i:03d}" for i in range(60)]
    add_members(factory, *ids)
    launch(factory, campaign(holdout="0.3", sponsor={"name": "伊利", "share": "0.5"}))
    results = send(factory, *[event(m, amount=100, order_id=f"o-{m}") for m in ids])
    aud = Audience(key="campaign:double", holdout=Decimal("0.3"))
    expected = {m: 200 if aud.group(m, None, {}) == "treated" else 100 for m in ids}
    assert {r["member_id"]: r["points"] for r in results} == expected
    treated = sum(1 for p in expected.values() if p == 200)
    assert 0 < treated < 60
    line = next(li for r in results for li in r["rules"] if li["rule"] == "campaign_double")
    assert line == {"rule": "campaign_double", "layer": "campaign", "wallet": None, "points": 100,
                    "sponsor": "伊利", "sponsored": 50}
    got = run(factory, lambda s, p: report.report(s, p, service.get(s, p.id, "double"), NOW + HOUR))
    assert got["cost"] | {} == {"points": 100 * treated, "liability_yuan": f"{treated}.00", "sponsor": "伊利",
                                "sponsored_points": 50 * treated, "sponsored_yuan": f"{treated / 2:.2f}",
                                "brand_points": 50 * treated, "brand_yuan": f"{treated / 2:.2f}",
                                "discounted_orders": 0, "points_saved": 0}
    assert got["participants"] == treated
    assert got["groups"] == {"treated": treated, "holdout": 60 - treated}
    assert got["budget"] == {"points": 10**6, "used": 100 * treated, "left": 10**6 - 100 * treated}
    # Everyone bought once for ¥100: no difference between the groups, exactly.
    assert got["incremental"]["spend"]["total"] == 0 and got["incremental"]["purchases"]["per_member"]["difference"] == 0
    settled = run(factory, lambda s, p: report.co_funding(s, p, NOW - DAY, NOW + DAY))
    assert settled == [{"sponsor": "伊利", "campaign": "double", "points": 100 * treated,
                        "sponsored_points": 50 * treated, "owed_yuan": f"{treated / 2:.2f}"}]
    assert Ledger(factory).verify() == []


def test_the_budget_is_a_hard_stop(factory):
    configure(factory, BASE)
    add_members(factory, "a", "b", "c")
    launch(factory, campaign(effect={"bonus": 40}, budget=100))
    results = send(factory, *[event(m, amount=10, order_id=f"o-{m}") for m in ("a", "b", "c")])
    assert [r["points"] for r in results] == [50, 50, 30]  # 40 + 40 + the 20 left; the base rule pays on
    got = run(factory, lambda s, p: report.report(s, p, service.get(s, p.id, "double"), NOW + HOUR))
    assert got["budget"] == {"points": 100, "used": 100, "left": 0}
    run(factory, lambda s, p: service.change(s, p, service.get(s, p.id, "double"), CampaignChange(budget=130),
                                             now=NOW, actor="t"))
    assert [r["points"] for r in send(factory, event("a", amount=10, order_id="o-a2"))] == [40]


def test_rollout_steps_and_stop_are_rule_versions(factory):
    configure(factory, BASE)
    ids = [f"m{i:03d}" for i in range(40)]
    add_members(factory, *ids)
    launch(factory, campaign(rollout="0.1"))
    run(factory, lambda s, p: service.change(s, p, service.get(s, p.id, "double"), CampaignChange(rollout=Decimal(1)),
                                             now=NOW + HOUR, actor="t"))
    late = send(factory, *[event(m, at=NOW + HOUR / 2, amount=10, order_id=f"early-{m}") for m in ids])
    now = send(factory, *[event(m, at=NOW + 2 * HOUR, amount=10, order_id=f"now-{m}") for m in ids])
    tenth = Audience(key="campaign:double", share=Decimal("0.1"))
    assert {r["member_id"] for r in late if r["points"] == 20} == {m for m in ids if tenth.group(m, None, {}) == "treated"}
    assert all(r["points"] == 20 for r in now)
    run(factory, lambda s, p: service.stop(s, p, service.get(s, p.id, "double"), now=NOW + 3 * HOUR, actor="t"))
    after = send(factory, event("m000", at=NOW + 4 * HOUR, amount=10, order_id="after"))
    assert after[0]["points"] == 10
    with pytest.raises(Conflict):
        run(factory, lambda s, p: service.launch(s, p, service.get(s, p.id, "double"), now=NOW, actor="t"))


def test_an_uploaded_list_is_the_target(factory):
    configure(factory, BASE)
    add_members(factory, "a", "b", "c")
    run(factory, lambda s, p: service.create(s, p, campaign(), now=NOW, actor="t"))
    with pytest.raises(InvalidRequest, match="unknown member"):
        run(factory, lambda s, p: service.upload_list(s, p, service.get(s, p.id, "double"),
                                                      MemberList(member_ids=["a", "zz"]), now=NOW, actor="t"))
    for listed in (["a", "b"], ["b"]):  # a second upload replaces the first
        run(factory, lambda s, p, listed=listed: service.upload_list(
            s, p, service.get(s, p.id, "double"), MemberList(member_ids=listed), now=NOW, actor="t"))
    run(factory, lambda s, p: service.launch(s, p, service.get(s, p.id, "double"), now=NOW, actor="t"))
    results = send(factory, *[event(m, amount=10, order_id=f"o-{m}") for m in ("a", "b", "c")])
    assert [r["points"] for r in results] == [10, 20, 10]
    assert run(factory, lambda s, p: get_member(s, p, "a").attributes.get("segments")) == []
