"""The seeded simulation: the plan is a function of its seed; a short run with faults on PostgreSQL ends with the
database equal to the model; a planted bug is caught and shrunk to a list no operation can be dropped from."""

from __future__ import annotations

import dataclasses
import shutil
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from jifen.db import make_engine, make_sessionmaker
from jifen.ledger.models import JournalEntry
from jifen.ledger.verify import verify
from jifen.sim import actions
from jifen.sim.plan import generate
from jifen.sim.run import SimulationFailed, rounds, simulate
from jifen.sim.shrink import ddmin, failing_prefix, replay_fails
from jifen.sim.workers import KILLED
from jifen.sim.world import wipe


def test_the_plan_is_a_function_of_its_seed_and_no_member_is_shared_by_two_clients_in_a_round():
    plan = generate(5, 400, 4)
    assert plan == generate(5, 400, 4)
    assert plan != generate(6, 400, 4)
    assert {op.kind for op in plan} >= set(actions.ACTIONS) | {"tick"}
    for ops, _ in rounds(plan):
        owners: dict[str, set[int]] = defaultdict(set)
        for op in ops:
            for key in ("member", "to", "sender", "owner"):
                if key in op.args:
                    owners[op.args[key]].add(op.client)
            for member, _amount in op.args.get("lines", []):
                owners[member].add(op.client)
        assert all(len(clients) == 1 for clients in owners.values())


def test_a_seeded_run_with_dropped_connections_and_lost_answers_ends_equal_to_the_model(pg_only_url):
    plan = generate(16, 200, 4)
    report = simulate(pg_only_url, plan, 4, faults=True, lose_answers=0.1, seed=16)
    assert report.ops == sum(op.kind != "tick" for op in plan)
    assert report.checkpoints >= 2 and report.ticks == sum(op.kind == "tick" for op in plan)
    lost = report.faults["answer lost (sent again, same key)"]
    assert lost > 0 and report.replayed >= lost  # each lost answer came back as a replay, done once
    assert report.acked > 0 and report.refused["insufficient_points"] > 0
    _assert_each_purchase_awarded_once(pg_only_url)


def test_api_workers_killed_with_sigkill_mid_operation_leave_the_database_equal_to_the_model(pg_only_url):
    plan = generate(23, 200, 4)
    report = simulate(pg_only_url, plan, 4, faults=True, seed=23, api_workers=2, kill_workers=0.03)
    assert report.ops == sum(op.kind != "tick" for op in plan) and report.checkpoints >= 2
    assert report.faults[KILLED] >= 1 and report.faults["job runner killed (SIGKILL)"] >= 1
    assert report.unknown >= report.faults[KILLED]  # each kill left its clients without an answer: sent again
    print(f"\nAPI workers killed: {report.ops} operations, {report.acked} acknowledged, {report.unknown} sent again, "
          f"{report.checkpoints} checkpoints, {report.seconds:.0f} s; faults {dict(report.faults)}")
    _assert_each_purchase_awarded_once(pg_only_url)


def _assert_each_purchase_awarded_once(url: str) -> None:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        assert verify(s) == []
        # every purchase awarded once, whichever path it took and however often it was sent
        awarded = dict(s.execute(select(JournalEntry.reference, func.count()).where(
            JournalEntry.reference.startswith("event:ev-"), JournalEntry.type == "award").group_by(
            JournalEntry.reference)).all())
    engine.dispose()
    assert awarded and set(awarded.values()) == {1}


@pytest.fixture
def sqlite_sim(sqlite_template, tmp_path):
    path = tmp_path / "sim.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def test_a_planted_bug_is_caught_and_shrunk_to_a_one_minimal_list(sqlite_sim, monkeypatch):
    def spend_one_short(env, op):  # the bug: a spend of n points takes n - 1
        fewer = dataclasses.replace(op, args=op.args | {"points": max(1, op.args["points"] - 1)})
        return actions.spend(env, fewer)

    monkeypatch.setitem(actions.ACTIONS, "spend", spend_one_short)
    plan = generate(3, 120, 1)
    with pytest.raises(SimulationFailed) as failed:
        wipe(sqlite_sim)
        simulate(sqlite_sim, plan, 1)
    assert "balances" in str(failed.value)
    fails = replay_fails(sqlite_sim, 1)
    smallest, replays = ddmin(failing_prefix(plan, failed.value.ops_done), fails)
    assert fails(smallest) and replays > 0
    assert any(op.kind == "spend" and op.args["points"] > 1 for op in smallest)
    for i in range(len(smallest)):  # 1-minimal: without any one of them, no failure
        assert fails(smallest[:i] + smallest[i + 1:]) is None
    assert len(smallest) < 10


def test_without_the_bug_the_same_plan_passes(sqlite_sim):
    plan = generate(3, 120, 1)
    wipe(sqlite_sim)
    report = simulate(sqlite_sim, plan, 1)
    assert report.ops == sum(op.kind != "tick" for op in plan) and report.checkpoints >= 2
