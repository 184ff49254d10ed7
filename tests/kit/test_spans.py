"""`db.in_spans` on both databases: a time falls in one of many (lo, hi] ranges given as one parameter."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import Column, Integer, MetaData, Table, event, insert, select

from jifen.db import UTCDateTime, in_spans

_T0 = dt.datetime(2026, 11, 11, tzinfo=dt.UTC)


def test_in_spans_picks_the_times_inside_any_range_bounds_included_above(engine):
    probe = Table("span_probe", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    probe.create(engine)
    rng = random.Random(7)
    times = [_T0 + dt.timedelta(minutes=rng.randrange(0, 30 * 24 * 60)) for _ in range(400)]
    spans = sorted((t - dt.timedelta(hours=1), t) for t in rng.sample(times, 60))
    times += [lo for lo, _ in spans]  # exactly on a lower bound: outside (unless inside another range)
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, statement, *_):
        statements.append(statement)

    try:
        with engine.begin() as conn:
            conn.execute(insert(probe), [{"id": i, "at": t} for i, t in enumerate(times)])
            got = set(conn.scalars(select(probe.c.id).where(in_spans(probe.c.at, "spans")), {"spans": spans}))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
        probe.drop(engine)
    assert got == {i for i, t in enumerate(times) if any(lo < t <= hi for lo, hi in spans)}
    if engine.dialect.name == "postgresql":
        # bound as a tstzrange[] itself: a text parameter cast in SQL was parsed again for every row compared
        query = next(st for st in statements if "span_probe" in st and st.lstrip().upper().startswith("SELECT"))
        assert "VARCHAR" not in query.upper() and "TSTZRANGE[]" in query.upper()
