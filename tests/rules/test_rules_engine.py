"""Rule evaluation without a database: conditions, awards, stacking, filters, caps, validation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from jifen.rules.engine import Counters, EventFacts, MemberFacts, UsageBook, fire, price
from jifen.rules.expressions import ExpressionError, compile_condition
from jifen.rules.schema import RuleSetDoc

TZ = ZoneInfo("Asia/Shanghai")
AT = dt.datetime(2026, 11, 11, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai, a Wednesday


def doc(*rules, **kw) -> RuleSetDoc:
    return RuleSetDoc.model_validate({"rules": list(rules), **kw})


def purchase(amount, lines=(), channel="app", at=AT, **attrs) -> EventFacts:
    return EventFacts(type="purchase", occurred_at=at, amount=Decimal(str(amount)), channel=channel,
                      lines=[{"category": c, "amount": Decimal(str(a))} for c, a in lines], attributes=attrs)


def member(tier=None, multiplier="1", **kw) -> MemberFacts:
    return MemberFacts(pk=7, member_id="M7", tier=tier, tier_multiplier=Decimal(multiplier),
                       joined_at=kw.pop("joined_at", AT - dt.timedelta(days=3)), **kw)


def counters(**values) -> Counters:
    return Counters(count=lambda t, p: values.get(f"count:{t}:{p}", 0), amount=lambda t, p: 0.0,
                    streak=lambda t: values.get(f"streak:{t}", 0), days_since=lambda t: values.get(f"since:{t}", -1))


def award(d: RuleSetDoc, ev: EventFacts, who: MemberFacts | None = None, book: UsageBook | None = None, **c):
    who = who or member()
    lines = price(d, fire(d, ev, who, counters(**c), TZ), ev, who, TZ, book or UsageBook(lambda keys: {}))
    return {line.rule: line.points for line in lines}


SEED_001 = [
    {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
    {"code": "over_100", "events": ["purchase"], "condition": "event.amount > 100", "award": {"multiplier": "1.1"}},
    {"code": "tier", "layer": "tier", "events": ["purchase"], "award": {"multiplier": "tier"}},
]


def test_seed_001_purchase_points():
    d = doc(*SEED_001)
    assert award(d, purchase("99.99")) == {"base": 99}  # ¥1 = 1 point, rounded down; no bonus at ¥100 or less
    assert award(d, purchase("100")) == {"base": 100}
    assert award(d, purchase("250.80")) == {"base": 250, "over_100": 25}
    # Gold ×1.3 multiplies the running total (multipliers: multiply): (250 + 25) × 0.3 = 82.5 → 82
    assert award(d, purchase("250.80"), member("gold", "1.3")) == {"base": 250, "over_100": 25, "tier": 82}


def test_additive_multipliers_apply_to_the_fixed_and_per_yuan_points_only():
    d = doc(*SEED_001, multipliers="add")
    # 250 × 0.1 = 25 and 250 × 0.3 = 75: ×1.4 in all, against ×1.43 when multiplying
    assert award(d, purchase("250"), member("gold", "1.3")) == {"base": 250, "over_100": 25, "tier": 75}


def test_layer_order_is_explicit_and_changes_the_result():
    rules = [{"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
             {"code": "double", "layer": "campaign", "events": ["purchase"], "award": {"multiplier": 2}},
             {"code": "welcome", "layer": "tier", "events": ["purchase"], "award": {"fixed": 100}}]
    assert award(doc(*rules), purchase(50)) == {"base": 50, "double": 50, "welcome": 100}
    # The fixed welcome gift first, then the campaign doubles it too.
    assert award(doc(*rules, layer_order=["tier", "base", "campaign"]), purchase(50)) == {
        "welcome": 100, "base": 50, "double": 150}


def test_priority_then_written_order_inside_a_layer():
    rules = [{"code": "z_bonus", "events": ["purchase"], "award": {"multiplier": 2}},
             {"code": "a_base", "events": ["purchase"], "award": {"per_yuan": 1}}]
    assert award(doc(*rules), purchase(10)) == {"a_base": 10}  # the multiplier ran first, on nothing
    rules[0]["priority"] = 5
    assert award(doc(*rules), purchase(10)) == {"a_base": 10, "z_bonus": 10}


def test_rounding_modes():
    for mode, expected in (("down", 12), ("half_up", 13), ("up", 13)):
        d = doc({"code": "r", "events": ["purchase"], "award": {"per_yuan": "1.5", "rounding": mode}})
        assert award(d, purchase("8.40")) == {"r": expected}  # 12.6 points


def test_category_rules_count_only_their_lines():
    d = doc({"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
            {"code": "beauty", "events": ["purchase"], "categories": ["美妝"], "award": {"multiplier": "1.5"}},
            {"code": "apparel_yuan", "events": ["purchase"], "categories": ["服飾"], "award": {"per_yuan": 2}},
            {"code": "cross", "events": ["purchase"], "award": {"fixed": 500},
             "condition": '"服飾" in event.categories && "美妝" in event.categories'})
    ev = purchase(300, lines=[("美妝", 200), ("服飾", 60), ("食品", 40)])
    # beauty: 2/3 of the 300 base points × 0.5 = 100; apparel: ¥60 × 2; cross-category +500 (seed 001)
    assert award(d, ev) == {"base": 300, "beauty": 100, "apparel_yuan": 120, "cross": 500}
    assert award(d, purchase(300, lines=[("食品", 300)])) == {"base": 300}


def test_channel_and_schedule_filters():
    window = {"starts_at": "2026-11-11T00:00:00+08:00", "ends_at": "2026-11-12T00:00:00+08:00"}
    d = doc({"code": "d11", "events": ["purchase"], "channels": ["app", "mini_program"], "award": {"fixed": 11},
             **window})
    assert award(d, purchase(1)) == {"d11": 11}
    assert award(d, purchase(1, channel="pos")) == {}
    assert award(d, purchase(1, at=dt.datetime(2026, 11, 11, 16, 0, tzinfo=dt.UTC))) == {}  # 00:00 on the 12th
    assert award(d, purchase(1, at=dt.datetime(2026, 11, 10, 15, 59, tzinfo=dt.UTC))) == {}  # 23:59 on the 10th


def test_conditions_see_member_tier_and_counters():
    d = doc({"code": "birthday", "events": ["purchase"], "condition": "member.birthday_month",
             "award": {"multiplier": 2}, "priority": 1},
            {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
            {"code": "first_order", "events": ["purchase"], "condition": 'count("purchase", "all") == 1',
             "award": {"fixed": 100}},
            {"code": "rfm", "events": ["purchase"], "priority": 2,
             "condition": 'days_since("purchase") >= 0 && days_since("purchase") <= 7 && count("purchase", "30d") >= 3',
             "award": {"multiplier": 3}},
            {"code": "gold_only", "events": ["purchase"], "condition": 'tier == "gold"', "award": {"fixed": 1}})
    plain = member(birthday=dt.date(1990, 3, 2))
    assert award(d, purchase(10), plain, **{"count:purchase:all": 1}) == {"base": 10, "first_order": 100}
    bday = member("gold", birthday=dt.date(1990, 11, 30))
    # Birthday month ×2 on the 10 base points, then RFM ×3 on the running 20 (priorities 1 and 2).
    got = award(d, purchase(10), bday, **{"count:purchase:all": 5, "count:purchase:30d": 3, "since:purchase": 2})
    assert got == {"base": 10, "gold_only": 1, "birthday": 11, "rfm": 44}


def test_a_failing_condition_does_not_fire():
    d = doc({"code": "vip", "events": ["purchase"], "condition": "event.attributes.vip_level > 2", "award": {"fixed": 5}})
    assert award(d, purchase(1)) == {}  # no such attribute: the rule simply does not fire
    assert award(d, purchase(1, vip_level=3)) == {"vip": 5}
    assert award(d, purchase(1, vip_level="high")) == {}  # wrong type: no error, no points


def test_caps_and_budgets_cut_the_award():
    d = doc({"code": "share", "events": ["purchase"], "award": {"fixed": 40}, "caps": {"day": 100},
             "budget": "campaign"}, budgets={"campaign": 130})
    book = UsageBook(lambda keys: {})
    got = [award(d, purchase(1), book=book) for _ in range(4)]
    assert got == [{"share": 40}, {"share": 40}, {"share": 20}, {"share": 0}]  # the day cap of 100
    tomorrow = purchase(1, at=AT + dt.timedelta(days=1))
    assert award(d, tomorrow, book=book) == {"share": 30}  # a new day, but the budget of 130 has 30 left
    assert award(d, tomorrow, book=book) == {"share": 0}


@pytest.mark.parametrize("source, message, position", [
    ("event.amount > 100 &&", "Syntax error", (1, 22)),
    ("event.amount >> 3", "Syntax error", (1, 15)),
    ("evnt.amount > 1", "unknown variable 'evnt'", (1, 1)),
    ("event.amount > 1 && eval('x')", "unknown function 'eval'", (1, 21)),
    ('count("browse", "fortnight") > 1', "period", (1, 1)),
    ("   ", "empty expression", None),
])
def test_invalid_expressions_are_rejected_with_their_position(source, message, position):
    with pytest.raises(ExpressionError) as exc:
        compile_condition(source)
    assert message in str(exc.value)
    assert exc.value.position == position


def test_a_rule_set_is_validated_before_it_is_saved():
    good = {"code": "ok", "events": ["purchase"], "award": {"fixed": 1}}
    cases = [
        ({"rules": [{**good, "condition": "event.amount >"}]}, "rules.0.condition"),
        ({"rules": [{**good, "award": {"fixed": 1, "per_yuan": 1}}]}, "exactly one of"),
        ({"rules": [good, good]}, "unique"),
        ({"rules": [{**good, "budget": "nope"}]}, "budget 'nope'"),
        ({"rules": [{**good, "award": {"multiplier": "tier"}}]}, "tier layer"),
        ({"rules": [good], "layer_order": ["base", "tier"]}, "layer_order"),
        ({"rules": [{**good, "starts_at": "2026-11-11T00:00:00"}]}, "timezone"),
        ({"rules": [{**good, "unknown": 1}]}, "Extra inputs"),
    ]
    for data, fragment in cases:
        with pytest.raises(ValidationError) as exc:
            RuleSetDoc.model_validate(data)
        assert fragment in str(exc.value), (fragment, str(exc.value))


def test_sponsored_rules_record_the_sponsor_share():
    d = doc({"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
            {"code": "d11", "layer": "campaign", "events": ["purchase"], "award": {"multiplier": 2},
             "sponsor": {"name": "美妝供應商A", "share": "0.5"}})
    ev = purchase(151)
    lines = price(d, fire(d, ev, member(), counters(), TZ), ev, member(), TZ, UsageBook(lambda keys: {}))
    assert [line.as_dict() for line in lines][1] == {
        "rule": "d11", "layer": "campaign", "wallet": None, "points": 151, "sponsor": "美妝供應商A", "sponsored": 76}
    with pytest.raises(ValidationError):
        doc({"code": "x", "events": ["purchase"], "award": {"fixed": 1}, "sponsor": {"name": "A", "share": "1.5"}})
