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



def test_a_lookup_on_postgresql_opens_no_transaction_and_refuses_writes(pg_only_url):
    from jifen.db import make_engine, make_lookup_sessionmaker

    engine = make_engine(pg_only_url)
    try:
        with make_lookup_sessionmaker(engine)() as s:
            assert s.scalar(select(Program.code).where(Program.code == "default")) == "default"
            # psycopg's view of the server connection after the statement: idle, not "in transaction"
            assert s.connection().connection.dbapi_connection.info.transaction_status.name == "IDLE"
            with pytest.raises(ReadOnlySession):
                s.execute(update(Program).values(name="Changed"))
    finally:
        engine.dispose()
