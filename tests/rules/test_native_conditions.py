"""rules/native runs the simple conditions in Python: on generated conditions and events it must answer
exactly what CEL answers, and leave to CEL everything outside its subset."""

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import cel
import pytest

from jifen.rules.engine import EventFacts, MemberFacts, event_variables
from jifen.rules.expressions import compile_condition, evaluate
from jifen.rules.native import FIELDS, native

TZ = ZoneInfo("Asia/Shanghai")
STRINGS = ["purchase", "check_in", "app", "pos", "", "gold", "silver", "M1", "2026-03-01", "Gold", "zz"]


def literal(rng: random.Random, kind: str) -> str:
    if kind == "string":
        return f'"{rng.choice(STRINGS)}"'
    if kind == "int":
        return str(rng.choice([0, 1, 3, 7, 12, 18, 100, 2026, -5]))
    if kind == "double":
        return rng.choice(["0.0", "99.5", "100.0", "150.25", "1e3", "100", "7"])  # ints compared with doubles too
    return rng.choice(["true", "false"])


def comparison(rng: random.Random) -> str:
    path, kind = rng.choice(list(FIELDS.items()))
    field = ".".join(path)
    if kind == "bool":
        return rng.choice([field, f"!{field}"])
    if rng.random() < 0.2 and kind in ("string", "int"):
        return f"{field} in [{', '.join(literal(rng, kind) for _ in range(rng.randint(1, 3)))}]"
    ops = ["==", "!=", "<", "<=", ">", ">="]
    other = literal(rng, kind)
    if rng.random() < 0.5:
        return f"{field} {rng.choice(ops)} {other}"
    return f"{other} {rng.choice(ops)} {field}"


def condition(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.4:
        return comparison(rng)
    joined = f" {rng.choice(['&&', '||'])} ".join(condition(rng, depth + 1) for _ in range(rng.randint(2, 3)))
    return f"!({joined})" if rng.random() < 0.2 else f"({joined})"


def variables(rng: random.Random) -> dict:
    at = dt.datetime(2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), tzinfo=dt.UTC)
    ev = EventFacts(type=rng.choice(["purchase", "check_in"]), occurred_at=at,
                    amount=Decimal(rng.choice([0, 99.5, 100, 150.25, 1000, 2500])), channel=rng.choice(["app", "pos", None]),
                    order_id=rng.choice(["M1", None]))
    member = MemberFacts(pk=1, member_id=rng.choice(["M1", "zz"]), tier=rng.choice(["gold", "silver", None]),
                         tier_multiplier=Decimal(1), joined_at=at - dt.timedelta(days=rng.randint(0, 900)),
                         birthday=rng.choice([None, dt.date(1990, at.month, at.day), dt.date(1990, 1, 1)]),
                         credit=rng.choice([100, 60]))
    return event_variables(ev, member, TZ)


def test_native_answers_what_cel_answers_on_generated_conditions():
    rng = random.Random(14)
    compiled = 0
    for _ in range(1500):
        source = condition(rng)
        check = native(source)
        if check is None:
            continue
        compiled += 1
        program = compile_condition(source)
        for _ in range(6):
            v = variables(rng)
            assert check(v) == evaluate(program, cel.Context(variables=v)), (source, v)
    assert compiled > 1000  # the generator stays inside the subset most of the time


@pytest.mark.parametrize("source", [
    'count("purchase", "day") == 1', "has(event.attributes.invitee)", "event.amount * 2 > 100",
    "event.attributes.level == 2", 'event.lines.exists(l, l.category == "x")', "event.amount == 100",
    'event.type == "a\\"b"', "0x10 > event.local.hour", "event.local.hour > 1u", 'event.amount > "1"',
    "event.amount in [1.0, 2.0]", "event.unknown > 1", "1 > 2", "event.amount >", "(event.amount > 1",
    "!" * 5000 + "true",
])
def test_everything_outside_the_subset_is_left_to_cel(source):
    assert native(source) is None


def test_inside_the_subset():
    v = variables(random.Random(1))
    assert native("true")(v) is True
    assert native('event.amount > 100 && (member.tier in ["gold", "vip"] || !member.birthday_month)') is not None
