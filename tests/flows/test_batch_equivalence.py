"""Property: a batch gives exactly what the same events sent one by one, in time order, would —
points per event, rules fired, tiers, balances — whatever the order the batch lists them in."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jifen.db import make_engine, make_sessionmaker
from tests.conftest import NOW, Ledger
from tests.support.intake import add_members, configure, event, send

MEMBERS = ("m1", "m2", "m3")
IN_FORCE = "2020-01-01T00:00:00+08:00"
RULES = {"budgets": {"promo": 400}, "rules": [
    {"code": "base", "events": ["purchase"], "award": {"per_yuan": 1}},
    {"code": "big", "events": ["purchase"], "condition": "event.amount > 100", "award": {"multiplier": "1.1"}},
    {"code": "first", "events": ["purchase"], "condition": 'count("purchase", "all") == 1', "award": {"fixed": 30}},
    {"code": "promo", "layer": "campaign", "events": ["purchase"], "award": {"fixed": 60}, "budget": "promo"},
    {"code": "tier", "layer": "tier", "events": ["purchase"], "award": {"multiplier": "tier"}},
    {"code": "checkin", "events": ["check_in"], "condition": 'count("check_in", "day") == 1', "award": {"fixed": 5}},
    {"code": "streak", "events": ["check_in"], "award": {"fixed": 20},
     "condition": 'count("check_in", "day") == 1 && streak("check_in") % 3 == 0'},
    {"code": "share", "events": ["share"], "award": {"fixed": 15}, "caps": {"day": 30}},
]}

step = st.tuples(st.sampled_from(MEMBERS), st.sampled_from(["purchase", "purchase", "check_in", "share", "refund"]),
                 st.integers(0, 4 * 24), st.integers(1, 120000))


def fresh(template) -> tuple:
    path = template.parent / f"eq-{uuid.uuid4().hex}.db"
    shutil.copy(template, path)
    engine = make_engine(f"sqlite:///{path}")
    factory = make_sessionmaker(engine)
    configure(factory, {"rules": RULES | {"effective_from": IN_FORCE}})  # (rules in force before every event)
    add_members(factory, *MEMBERS)
    return engine, factory


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=25), order=st.randoms(use_true_random=False))
def test_batch_equals_one_by_one(sqlite_template, steps, order):
    events, orders = [], {}
    for n, (member, kind, hours, cents) in enumerate(steps):
        # Distinct instants: at the same instant, the order a batch lists events in is the only order there is.
        at = NOW - dt.timedelta(days=5) + dt.timedelta(hours=hours, seconds=n)
        if kind == "refund":
            mine = orders.get(member)
            if not mine:
                continue
            # (off the whole second by n ms: two refunds of one order early in the list stay distinct instants)
            after = max(at, mine[1] + dt.timedelta(seconds=1, milliseconds=n + 1))
            events.append(event(member, "refund", at=after, order_id=mine[0], event_id=f"e{n}",
                                amount=f"{min(cents, 100) / 100:.2f}"))
            continue
        fields = {"amount": f"{cents / 100:.2f}", "order_id": f"o{n}"} if kind == "purchase" else {}
        events.append(event(member, kind, at=at, event_id=f"e{n}", **fields))
        if kind == "purchase":
            orders[member] = (f"o{n}", at)
    if not events:
        return
    shuffled = list(events)
    order.shuffle(shuffled)
    eng_a, batch_db = fresh(sqlite_template)
    eng_b, single_db = fresh(sqlite_template)
    try:
        together = {r["event_id"]: r for r in send(batch_db, *shuffled, now=NOW, strict=False)}
        alone = {}
        for ev in sorted(events, key=lambda e: e.occurred_at):
            alone.update({r["event_id"]: r for r in send(single_db, ev, now=NOW, strict=False)})

        def essence(r):
            if r["status"] == "rejected":
                return ("rejected", r["error"]["code"])
            return (r["status"], r["points"], [(x["rule"], x["points"]) for x in r.get("rules", [])],
                    r.get("tier"), r.get("tier_upgraded"))

        assert {k: essence(v) for k, v in together.items()} == {k: essence(v) for k, v in alone.items()}
        a, b = Ledger(batch_db), Ledger(single_db)
        for mid in MEMBERS:
            assert a.balances(mid) == b.balances(mid)
        assert a.verify() == [] and b.verify() == []
    finally:
        eng_a.dispose()
        eng_b.dispose()


def test_an_upgrade_inside_a_batch_prices_the_members_later_events_at_the_new_tier(sqlite_template):
    """Three ¥600 purchases: the second lifts the member over ¥1,000 to silver, so the third earns silver's
    ×1.1 — in a batch as one by one (the batch once priced them all at the tier the member had before)."""
    events = [event("m1", at=NOW - dt.timedelta(hours=3 - n), event_id=f"p{n}", amount="600.00", order_id=f"o{n}")
              for n in range(3)]
    results = []
    for send_as_batch in (True, False):
        engine, factory = fresh(sqlite_template)
        try:
            got = send(factory, *events, now=NOW) if send_as_batch else [send(factory, e, now=NOW)[0] for e in events]
            results.append([(r["points"], r["member_tier"], r["tier"]) for r in got])
        finally:
            engine.dispose()
    assert results[0] == results[1] == [(750, "normal", "normal"), (720, "normal", "silver"), (792, "silver", "silver")]
