"""Simulation and recompute, checked by hand on a small history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from jifen.db import run_in_transaction
from jifen.flows import replay as replay_module
from jifen.flows.replay import recompute, simulate
from jifen.ledger.models import JournalEntry
from jifen.programs.service import get_program
from jifen.rules.schema import RuleSetDoc
from tests.conftest import NOW, Ledger
from tests.support.intake import SEED_001, add_members, configure, send_one

DAY = dt.timedelta(days=1)
START, END = NOW - 10 * DAY, NOW + DAY


def history(factory):
    """alice: ¥50 → 50, ¥150 → 165, ¥99.99 → 99, two check-ins → 10 (324 in all).
    bob: ¥300 → 330, a third refunded → 110 taken back (220 kept)."""
    configure(factory, now=NOW - 20 * DAY)
    add_members(factory, "alice", "bob")
    for i, (amount, at) in enumerate([(50, NOW - 5 * DAY), (150, NOW - 4 * DAY), ("99.99", NOW - 3 * DAY)]):
        send_one(factory, "alice", amount=amount, order_id=f"A{i}", at=at, now=NOW)
    for d in (2, 1):
        send_one(factory, "alice", "check_in", at=NOW - d * DAY, now=NOW)
    send_one(factory, "bob", amount=300, order_id="B1", at=NOW - 3 * DAY, now=NOW)
    assert send_one(factory, "bob", "refund", amount=100, order_id="B1", at=NOW - 2 * DAY, now=NOW)["points"] == -110


DRAFT = RuleSetDoc.model_validate({"multipliers": "add", "rules": [
    {"code": "purchase_base", "events": ["purchase"], "award": {"per_yuan": 2}},
    {"code": "big_order_bonus", "events": ["purchase"], "condition": "event.amount > 100", "award": {"multiplier": "1.5"}},
    {"code": "daily_check_in", "events": ["check_in"], "award": {"fixed": 10}}]})


def run_simulation(factory, draft=DRAFT, start=START, end=END):
    with factory() as s:
        return simulate(s, get_program(s, "default"), draft, start, end)


def test_simulation_numbers_by_hand(factory):
    history(factory)
    before = _entries(factory)
    r = run_simulation(factory)
    # Draft: 100 + (300 + 150) + 199 + 20 for alice = 769; bob 600 + 300 = 900, a third refunded → 600.
    assert r["events"] == 6 and r["members_affected"] == 2
    assert r["points"] == {"baseline": 544, "draft": 1369, "difference": 825}
    assert r["liability_yuan"] == {"baseline": "5.44", "draft": "13.69", "difference": "8.25"}
    assert r["top_rules"] == [
        {"rule": "purchase_base", "baseline": 599, "draft": 1199, "difference": 600},
        {"rule": "big_order_bonus", "baseline": 45, "draft": 450, "difference": 405},
        {"rule": "daily_check_in", "baseline": 10, "draft": 20, "difference": 10},
    ]
    assert _entries(factory) == before  # a simulation writes nothing


def test_simulation_reports_progress_and_every_rule_with_the_members_it_changes(factory, monkeypatch):
    history(factory)
    monkeypatch.setattr(replay_module, "PROGRESS_EVERY", 2)
    seen: list[tuple[int, int]] = []
    with factory() as s:
        r = simulate(s, get_program(s, "default"), DRAFT, START, END, lambda done, total: seen.append((done, total)))
    assert seen == [(0, 6), (2, 6), (4, 6), (6, 6), (6, 6)]  # counted first, then every 2 events, then the end
    # purchase_base 599 → 1199 for alice and bob; the bonus 45 → 450 (alice's ¥150, bob's ¥300); the check-ins
    # 10 → 20, alice's only. A percentage is of the rules in force.
    assert r["rules"] == [
        {"rule": "purchase_base", "baseline": 599, "draft": 1199, "difference": 600, "percent": "100.2",
         "members_affected": 2},
        {"rule": "big_order_bonus", "baseline": 45, "draft": 450, "difference": 405, "percent": "900.0",
         "members_affected": 2},
        {"rule": "daily_check_in", "baseline": 10, "draft": 20, "difference": 10, "percent": "100.0",
         "members_affected": 1},
    ]
    renamed = DRAFT.model_copy(update={"rules": [DRAFT.rules[0].model_copy(update={"code": "base_v2"})]})
    by_code = {x["rule"]: x for x in run_simulation(factory, renamed)["rules"]}
    assert by_code["base_v2"]["percent"] is None and by_code["base_v2"]["baseline"] == 0  # a new rule: no base
    assert by_code["purchase_base"]["draft"] == 0 and by_code["purchase_base"]["percent"] == "-100.0"


def test_simulation_of_the_rules_in_force_changes_nothing_and_honours_the_range(factory):
    history(factory)
    same = RuleSetDoc.model_validate({k: v for k, v in SEED_001["rules"].items() if k not in ("effective_from", "note")})
    r = run_simulation(factory, same)
    assert r["points"] == {"baseline": 544, "draft": 544, "difference": 0} and r["members_affected"] == 0
    only_last_days = run_simulation(factory, DRAFT, start=NOW - 2 * DAY - dt.timedelta(hours=1))
    assert only_last_days["events"] == 2 and only_last_days["points"] == {"baseline": 10, "draft": 20, "difference": 10}


def _entries(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(JournalEntry))


def _recompute(factory, apply):
    return run_in_transaction(factory, lambda s: recompute(s, get_program(s, "default"), START, END, now=NOW,
                                                           actor="test", apply=apply))


def _publish_bonus(factory, multiplier: str | None):
    rules = [r for r in SEED_001["rules"]["rules"] if r["code"] != "big_order_bonus" or multiplier]
    rules = [r | {"award": {"multiplier": multiplier}} if r["code"] == "big_order_bonus" else r for r in rules]
    configure(factory, {"rules": {"effective_from": (NOW - 15 * DAY).isoformat(), "rules": rules}}, now=NOW)


def test_recompute_posts_differences_as_correcting_entries(factory):
    history(factory)
    _publish_bonus(factory, "1.2")  # the bonus should have been 20%
    before = _entries(factory)
    dry = _recompute(factory, apply=False)
    # alice's ¥150 order: 165 → 180 (+15); bob's ¥300 order: 360, a third refunded → 240 against 220 (+20).
    assert (dry["corrected_events"], dry["members_affected"], dry["points_added"], dry["points_removed"]) == (2, 2, 35, 0)
    assert _entries(factory) == before  # dry run: nothing written
    applied = _recompute(factory, apply=True)
    assert applied["points_added"] == 35 and _entries(factory) == before + 2
    assert _recompute(factory, apply=False)["corrected_events"] == 0  # corrected once, not again
    led = Ledger(factory, now=NOW + 30 * DAY)
    assert led.balances("alice")["pending"] + led.balances("alice")["available"] == 324 + 15
    # Then the bonus is dropped altogether: the extra points come back out, correction first.
    _publish_bonus(factory, None)
    again = _recompute(factory, apply=True)
    assert (again["points_added"], again["points_removed"]) == (0, 30 + 40)
    assert led.balances("bob")["pending"] + led.balances("bob")["available"] == 200
    assert _recompute(factory, apply=False)["corrected_events"] == 0
    assert led.verify() == []


def test_a_refund_after_a_correction_takes_back_the_corrected_points_too(factory):
    history(factory)
    _publish_bonus(factory, "1.2")
    _recompute(factory, apply=True)  # alice's ¥150 order: 165 + 15
    led = Ledger(factory, now=NOW + 30 * DAY)
    before = led.balances("alice")["available"] + led.balances("alice")["pending"]
    half = send_one(factory, "alice", "refund", amount=75, order_id="A1", at=NOW, now=NOW)
    assert half["points"] == -90  # half of 180
    rest = send_one(factory, "alice", "refund", order_id="A1", at=NOW, now=NOW)
    assert rest["points"] == -90
    after = led.balances("alice")["available"] + led.balances("alice")["pending"]
    assert before - after == 180
    assert _recompute(factory, apply=False)["corrected_events"] == 0  # nothing left to correct
    assert led.verify() == []
