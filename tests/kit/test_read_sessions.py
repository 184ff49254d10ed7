"""Read sessions (db.make_read_sessionmaker) refuse writes: on PostgreSQL they run without a transaction, so
a write would commit at once instead of being discarded with the session."""

import pytest
from sqlalchemy import select, text, update

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


def test_a_read_session_on_postgresql_opens_no_transaction(pg_only_url):
    from jifen.db import make_engine

    engine = make_engine(pg_only_url)
    try:
        with make_read_sessionmaker(engine)() as s:
            s.execute(text("SELECT 1"))
            # psycopg's view of the server connection: idle, not "in transaction"
            assert s.connection().connection.dbapi_connection.info.transaction_status.name == "IDLE"
    finally:
        engine.dispose()
