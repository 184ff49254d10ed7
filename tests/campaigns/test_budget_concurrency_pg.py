"""A campaign's budget under concurrent events for different members on PostgreSQL: threads send
purchases at once; the campaign's points never pass its budget, and the budget is spent to the point."""

from __future__ import annotations

from sqlalchemy import select

from jifen.db import make_engine, make_sessionmaker
from jifen.events.models import Event
from jifen.programs.service import get_program
from tests.campaigns.test_campaigns import BASE, campaign, launch
from tests.conftest import Ledger
from tests.support.intake import add_members, configure, event, send
from tests.support.racing import race

THREADS = 24
EVENTS_PER_THREAD = 5


def test_campaign_budget_holds_under_concurrent_events(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory, BASE)
    members = [f"m{i:03d}" for i in range(THREADS * EVENTS_PER_THREAD)]
    add_members(factory, *members)
    launch(factory, campaign(effect={"bonus": 7}, budget=500))
    # 120 purchases × 7 bonus points = 840 wanted against 500; each thread sends its members one by one.
    errors = race(lambda t: [send(factory, event(m, amount=10, order_id=f"o-{m}"))
                             for m in members[t * EVENTS_PER_THREAD:(t + 1) * EVENTS_PER_THREAD]], range(THREADS))
    assert errors == []
    with factory() as s:
        program = get_program(s, "default")
        results = [r for (r,) in s.execute(select(Event.result).where(Event.program_id == program.id))]
    campaign_points = [li["points"] for r in results for li in r["rules"] if li["rule"] == "campaign_double"]
    base_points = [li["points"] for r in results for li in r["rules"] if li["rule"] == "base"]
    assert sum(campaign_points) == 500
    assert sorted(base_points) == [10] * len(members)  # the budget stops the campaign, not the purchase
    assert Ledger(factory).verify() == []
    engine.dispose()
