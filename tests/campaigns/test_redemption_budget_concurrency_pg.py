"""A double-value campaign's budget under concurrent redemptions for different members on PostgreSQL: the
threads redeem at once; the points saved never pass the budget, the budget is spent to the last whole
saving, and every order beyond it pays the normal price."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from jifen.db import make_engine, make_sessionmaker
from jifen.mall.models import Redemption
from tests.campaigns.test_campaigns import DAY, launch
from tests.campaigns.test_redemption_days import HALF, PRICE, buy, halfprice, shop, used
from tests.conftest import NOW, Ledger
from tests.support.racing import race

THREADS = 24
SAVING = PRICE - HALF
BUDGET = 10 * SAVING + SAVING - 1  # room for 10 savings and most of an 11th, which must not be given


def test_the_discount_budget_holds_under_concurrent_redemptions(pg_only_url):
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    members = [f"m{i:03d}" for i in range(THREADS)]
    shop(factory, *members)
    launch(factory, halfprice(budget=BUDGET), now=NOW - DAY)
    assert race(lambda mid: buy(factory, mid), members) == []
    with factory() as s:
        orders = s.execute(select(Redemption.points, Redemption.points_saved, Redemption.campaign)).all()
    assert len(orders) == THREADS
    assert Counter((o.points, o.points_saved, o.campaign) for o in orders) == {
        (HALF, SAVING, "half"): 10, (PRICE, 0, None): THREADS - 10}
    assert used(factory) == 10 * SAVING <= BUDGET
    assert Ledger(factory).verify() == []
    engine.dispose()
