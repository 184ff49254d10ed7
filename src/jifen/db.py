"""Engine, sessions and transactions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Cast,
    ColumnElement,
    ColumnExpressionArgument,
    DateTime,
    Integer,
    String,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

from jifen.config import ensure_sqlite_dir, get_settings
from jifen.errors import NotFound

T = TypeVar("T")


class _ProgramOwned(Protocol):
    @property
    def program_id(self) -> int: ...


OwnedT = TypeVar("OwnedT", bound=_ProgramOwned)

# BIGINT primary keys on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on both databases (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(session: Session, table: Any) -> Any:
    """An INSERT with the session's database's ON CONFLICT clauses (PostgreSQL's and SQLite's own insert)."""
    return _INSERTS[session.get_bind().dialect.name](table)


class among(ColumnElement[bool]):  # noqa: N801 - reads as a SQL operator, like in_
    """`column IN (:name)` for a list given at execution. On PostgreSQL one array parameter (`= ANY(:name)`):
    the SQL text is the same for every list length, so neither SQLAlchemy, psycopg nor the server renders or
    parses a placeholder per item (a batch's 1,000 members made each such query a new, long statement)."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: no "= 1" on SQLite
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string)]

    def __init__(self, column: Any, name: str) -> None:
        self.column, self.name = column, name


@compiles(among)
def _among_in(element: among, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(among, "postgresql")
def _among_any(element: among, compiler: Any, **kw: Any) -> str:
    array = postgresql.ARRAY(element.column.type)
    return compiler.process(element.column == any_(bindparam(element.name, type_=array)), **kw)


class _Spans(TypeDecorator):
    """A list of (lo, hi] time ranges as one parameter: tstzrange[] on PostgreSQL, JSON text on SQLite."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        # A real tstzrange[] parameter: bound as text and cast in SQL, PostgreSQL re-parsed the whole array
        # for every row it compared (2–3 s per risk window query once members had a month of events).
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(postgresql.TSTZRANGE))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            return [postgresql.Range(lo, hi, bounds="(]") for lo, hi in value]
        stored = "%Y-%m-%d %H:%M:%S.%f"  # as SQLAlchemy writes DateTime on SQLite (UTCDateTime: naive UTC)
        return json.dumps([[lo.astimezone(dt.UTC).strftime(stored), hi.astimezone(dt.UTC).strftime(stored)]
                           for lo, hi in value])


class in_spans(ColumnElement[bool]):  # noqa: N801 - reads as a SQL operator
    """`column` falls in one of the (lo, hi] ranges given at execution as `name`, in one parameter: a batch
    spread over a month reads the hours around its events without an OR clause per range."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string)]

    def __init__(self, column: Any, name: str) -> None:
        self.column, self.name = column, name


@compiles(in_spans)
def _in_spans_json(element: in_spans, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)
    spans = compiler.process(bindparam(element.name, type_=_Spans()), **kw)
    return (f"EXISTS (SELECT 1 FROM json_each({spans}) AS s WHERE {col} > json_extract(s.value, '$[0]') "
            f"AND {col} <= json_extract(s.value, '$[1]'))")


@compiles(in_spans, "postgresql")
def _in_spans_ranges(element: in_spans, compiler: Any, **kw: Any) -> str:
    col = compiler.process(element.column, **kw)
    return f"{col} <@ tstzmultirange(VARIADIC {compiler.process(bindparam(element.name, type_=_Spans()), **kw)})"


def total(column: ColumnExpressionArgument[Any]) -> Cast[int]:
    """SUM as a whole number on both databases (PostgreSQL sums BIGINT into NUMERIC), 0 when empty."""
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


_DECODED: dict[int, tuple[Any, Any]] = {}


def decoded(value: Any, parse: Callable[[Any], T]) -> T:
    """A JSON column's value parsed once per loaded object (the hot path asks for a programme's tiers or a
    rule version's document several times per event). Such columns are only ever replaced whole, never
    edited in place, so the loaded object's identity stands for its content; the entry keeps the object
    alive, so its id cannot be reused while it is here."""
    hit = _DECODED.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    if len(_DECODED) >= 1024:
        _DECODED.clear()
    result = parse(value)
    _DECODED[id(value)] = (value, result)
    return result


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


WRITER = "jifen_sqlite_writer"  # set on a connection while it holds its engine's writer lock


def refresh_statistics(engine: Engine, tables: Sequence[str] = ()) -> None:
    """ANALYZE the tables named, or the whole database (PostgreSQL; a sample of each table, milliseconds to a
    second): for bulk writers whose tables grew faster than autovacuum looks."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"ANALYZE {', '.join(tables)}" if tables else "ANALYZE"))


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE: writers serialise up front
            # instead of failing later with "database is locked" on lock upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # Writers of this process queue on a lock before BEGIN IMMEDIATE: SQLite's own busy handler
        # polls with sleeps of up to 100 ms, which under contention turns into second-long tails.
        writers = threading.Lock()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Readers (see make_read_sessionmaker) take a plain deferred BEGIN: with WAL they run
            # alongside the one writer instead of queueing behind it.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
                return
            if not writers.acquire(timeout=30):  # what SQLite's busy timeout would have said
                raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
            conn.info[WRITER] = True
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _release(conn)
                raise

        def _release(conn, *_):
            if conn.info.pop(WRITER, False):
                writers.release()

        # Released as the transaction ends (just before COMMIT / ROLLBACK reach SQLite: a waiting
        # writer then meets SQLite's lock for that moment only).
        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", get_settings().db_pool_size)
        kwargs.setdefault("max_overflow", get_settings().db_max_overflow)
    # No pre-ping round trip per transaction: a connection found dead is invalidated and the
    # transaction retried by run_in_transaction instead.
    return create_engine(url, pool_recycle=1800, **kwargs)


READ_ONLY = "jifen_read_only"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for requests that only read (same pool; a deferred transaction on SQLite). (Not AUTOCOMMIT on
    PostgreSQL, which would save BEGIN and ROLLBACK: the replay and the exports stream rows through server-side
    cursors, which need a transaction.)"""
    factory = sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
    # A write in a read session would be discarded unseen at its end: it is refused instead.
    event.listen(factory, "before_flush", _no_flush)
    event.listen(factory, "do_orm_execute", _no_dml)
    return factory


def make_lookup_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Read sessions for a single-statement look-up on every request (an API key's): on PostgreSQL without
    a transaction, one round trip instead of BEGIN, SELECT and ROLLBACK (one statement needs no snapshot
    beyond its own; the other reads keep a transaction for their server-side cursors)."""
    if engine.dialect.name != "postgresql":
        return make_read_sessionmaker(engine)
    return make_read_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


class ReadOnlySession(RuntimeError):
    def __init__(self) -> None:
        super().__init__("a read session may not write: use app.state.sessions")


def _no_flush(session: Session, _context, _instances) -> None:
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise ReadOnlySession()


def _no_dml(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySession()


def _retryable(exc: DBAPIError) -> bool:
    # A dropped connection, a PostgreSQL serialization failure or deadlock, SQLite busy: the whole
    # transaction may be retried.
    if exc.connection_invalidated:
        return True
    code = getattr(exc.orig, "sqlstate", None)
    if code in ("40001", "40P01"):
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower()


def run_in_transaction(factory: sessionmaker[Session], fn: Callable[[Session], T], attempts: int = 5) -> T:
    """Run fn in one transaction, committing on success; retry transient lock failures."""
    for attempt in range(attempts):
        try:
            with factory() as session, session.begin():
                return fn(session)
        except DBAPIError as exc:
            if attempt + 1 == attempts or not _retryable(exc):
                raise
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


def by_code(session: Session, model: type[T], program_id: int, code: str, label: str) -> T:
    """The programme's row of `model` with this code; otherwise 404 `unknown_<label>`."""
    columns: Any = model  # (a mapped class with program_id and code columns)
    row = session.scalar(select(model).where(columns.program_id == program_id, columns.code == code))
    if row is None:
        raise NotFound(f"unknown {label} {code!r}", code=f"unknown_{label}")
    return row


def owned(session: Session, model: type[OwnedT], pk: int, program_id: int, label: str, code: str) -> OwnedT:
    """The row of `model` with this id if it belongs to the programme; otherwise 404 with `code`
    (another programme's row is as unknown as a missing one)."""
    row = session.get(model, pk)
    if row is None or row.program_id != program_id:
        raise NotFound(f"no {label} {pk}", code=code)
    return row
