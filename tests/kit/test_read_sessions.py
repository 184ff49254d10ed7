"""Read sessions (db.make_read_sessionmaker) refuse writes, which would otherwise be discarded unseen."""

import pytest
from sqlalchemy import select, update

from jifen.db import ReadOnlySession, make_read_sessionmaker
from jifen.programs.models import Program


def test_a_read_session_refuses_orm_and_core_writes_and_nothing_changes(engine, factory):
    with factory.begin() as s:
        s.add(Program(code="p1", name="Before"))
    reads = make_read_sessionmaker(engine)
    with reads() as s:
        program = s.scalar(select(Program).where(Program.code == "p1"))
        program.name = "Changed"
        with pytest.raises(ReadOnlySession):
            s.flush()
    with reads() as s, pytest.raises(ReadOnlySession):
        s.execute(update(Program).where(Program.code == "p1").values(name="Changed"))
    with reads() as s, pytest.raises(ReadOnlySession):
        s.add(Program(code="p2", name="New"))
        s.flush()
    with reads() as s:
        assert s.execute(select(Program.code, Program.name).where(Program.code.like("p_"))).all() == [("p1", "Before")]

