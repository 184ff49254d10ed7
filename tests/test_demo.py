"""The demo's history is dated up to its clock and no further."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from jifen.approvals import service as approvals
from jifen.demo import seed_demo
from jifen.engagement import teams
from jifen.engagement.models import Task, Team
from jifen.ledger.models import JournalEntry, Lot
from jifen.mall import lottery
from jifen.mall.models import LotteryDraw
from jifen.programs.service import get_program

# 09:00 in Shanghai: the programme's next midnight, when the replay's nightly job used to run, is 15 h ahead.
CLOCK = dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.UTC)


def test_no_demo_entry_is_dated_after_the_clock_and_open_return_windows_stay_pending(factory):
    seed_demo(factory, members=200, days=30, now=CLOCK)
    with factory() as s:
        late = s.execute(select(JournalEntry.type, func.count()).where(
            (JournalEntry.recorded_at > CLOCK) | (JournalEntry.occurred_at > CLOCK)).group_by(JournalEntry.type)).all()
        matured_early = s.scalar(select(func.count()).select_from(Lot).where(
            Lot.pending_until > CLOCK, Lot.pending == 0, Lot.available > 0))
        still_pending = s.scalar(select(func.count()).select_from(Lot).where(Lot.pending > 0))
        last_mature = s.scalar(select(func.max(JournalEntry.recorded_at)).where(JournalEntry.type == "mature"))
    assert late == []
    assert matured_early == 0
    assert still_pending > 0  # purchases of the last 7 days are still inside their return window
    assert last_mature == CLOCK  # today's maturing ran at the clock, not at tonight's midnight


def test_the_demo_fills_the_engagement_pages_and_sets_an_approval_threshold(factory):
    seed_demo(factory, members=200, days=30, now=CLOCK)
    with factory() as s:
        program = get_program(s, "default")
        assert approvals.threshold(program) == 5000  # a big adjustment in the demo waits for a second person
        assert set(s.scalars(select(Task.code).where(Task.program_id == program.id))) == {
            "first_purchase", "weekly_check_ins", "big_spender"}
        pool = lottery.get_pool(s, program.id, "lucky_wheel")
        draws = s.scalar(select(func.count()).select_from(LotteryDraw).where(LotteryDraw.pool_id == pool.id))
        sizes = [teams.size(s, t.id) for t in s.scalars(select(Team).where(Team.program_id == program.id))]
    assert 0 < draws <= 20 and sizes == [3, 3, 3]
