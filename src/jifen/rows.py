"""Many rows in one statement: the set-oriented write path's tools.

On PostgreSQL new rows go in by `COPY` (a few by `INSERT … SELECT FROM unnest(…)`) and updates come as arrays
(`UPDATE … FROM unnest(…)`), so a batch costs a fixed number of round trips and no SQL text grows with it
(psycopg parsing a 10,000-placeholder statement took longer than the server running it), and a small batch
(a group commit's) skips SQLAlchemy's per-statement work, which cost more than the statements. On SQLite —
one writer, no network — SQLAlchemy Core's executemany does the same job. Rows are dicts keyed by column
name; on PostgreSQL the values must be what the column takes (aware datetimes in UTC, JSON as Python objects).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import JSON, Select, Table, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from jifen.db import upsert

_PG = postgresql.dialect()
COPY_FROM = 8  # fewer new rows than this go by INSERT … SELECT FROM unnest: COPY's own round trips cost more for them


def _table(model: Any) -> Table:
    return model.__table__ if hasattr(model, "__table__") else model


def _pg(session: Session) -> Any | None:
    """The psycopg connection under the session's transaction, or None on SQLite."""
    conn = session.connection()
    return conn.connection.driver_connection if conn.dialect.name == "postgresql" else None


@cache
def _pg_types(table: Table) -> dict[str, tuple[str, bool]]:
    """{column: (PostgreSQL type, is JSON)} — JSON travels as text and is cast on the server."""
    return {c.name: (c.type.compile(dialect=_PG), isinstance(c.type, JSON)) for c in table.columns}


def _value(value: Any, is_json: bool) -> Any:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if is_json and value is not None else value


@cache
def _compiled(stmt: Select, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """(SQL text, the literal values SQLAlchemy made parameters) of a statement, compiled once."""
    compiled = stmt.compile(dialect=dialect)
    return compiled.string, dict(compiled.params)


def select_rows(session: Session, stmt: Select, params: dict[str, Any]) -> list[tuple]:
    """The rows of a Core select (flushing the session first, as Session.execute would). On PostgreSQL the
    compiled SQL runs on the psycopg cursor and its tuples come back as they are: for the few thousand rows a
    batch reads back (its members' accounts), SQLAlchemy's result and ORM layers cost more than the query
    (8 % of a bulk import, py-spy). Only for columns whose values need no result processing (numbers, text), and
    for a module-level statement: its compiled text is cached per statement object."""
    session.flush()
    pg = _pg(session)
    if pg is None:
        return [tuple(r) for r in session.connection().execute(stmt, params)]
    sql, literals = _compiled(stmt, session.connection().dialect)
    return pg.execute(sql, {**literals, **params}).fetchall()


def new_ids(session: Session, n: int, *models: Any) -> list[list[int]]:
    """n primary keys for each model's rows about to be inserted, in one call: from the tables' sequences on
    PostgreSQL (one statement for all of them); on SQLite after the largest id (the writer holds the database lock,
    so nobody else takes them)."""
    tables = [_table(model) for model in models]
    if n == 0:
        return [[] for _ in tables]
    pg = _pg(session)
    if pg is not None:
        picks = ", ".join("nextval(pg_get_serial_sequence(%s, 'id'))" for _ in tables)
        rows = pg.execute(f"SELECT {picks} FROM generate_series(1, %s)", [*(t.name for t in tables), n]).fetchall()
        return [list(column) for column in zip(*rows, strict=True)]
    taken = session.info.setdefault("jifen_ids_taken", {})  # taken here but perhaps not inserted yet
    out = []
    for table in tables:
        top = session.connection().execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)).scalar() or 0
        top = max(top, taken.get(table.name, 0))
        taken[table.name] = top + n
        out.append(list(range(top + 1, top + 1 + n)))
    return out


def insert_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys)."""
    if not rows:
        return
    table = _table(model)
    pg = _pg(session)
    if pg is None:
        session.connection().execute(insert(table), list(rows))
        return
    if len(rows) < COPY_FROM:
        _insert_select(pg, table, rows, "")
        return
    columns = list(rows[0])
    types = _pg_types(table)
    json_cols = [c for c in columns if types[c][1]]
    with pg.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            if json_cols:
                row = {**row, **{c: _value(row[c], True) for c in json_cols}}
            copy.write_row([row[c] for c in columns])


def _unnest(table: Table, columns: Sequence[str]) -> tuple[str, str]:
    """(`unnest(%s::t1[], …) AS v(c1, …)`, the select list casting JSON back)."""
    types = _pg_types(table)
    arrays = ", ".join("%b::text[]" if types[c][1] else f"%b::{types[c][0]}[]" for c in columns)
    picks = ", ".join(f"v.{c}::{types[c][0]}" if types[c][1] else f"v.{c}" for c in columns)
    return f"unnest({arrays}) AS v({', '.join(columns)})", picks


def _arrays(table: Table, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> list[list[Any]]:
    types = _pg_types(table)
    rows = list(rows)
    return [[_value(r[c], types[c][1]) for r in rows] for c in columns]


def insert_new(session: Session, model: Any, rows: Sequence[dict[str, Any]], returning: Sequence[str]) -> list[tuple]:
    """Insert rows, skipping those a unique key already holds (ON CONFLICT DO NOTHING); the `returning`
    columns of the rows inserted."""
    if not rows:
        return []
    table = _table(model)
    pg = _pg(session)
    if pg is None:
        stmt = upsert(session, table).on_conflict_do_nothing().returning(*[table.c[c] for c in returning])
        return [tuple(r) for r in session.connection().execute(stmt, list(rows))]
    return _insert_select(pg, table, rows, f"ON CONFLICT DO NOTHING RETURNING {', '.join(returning)}")


def merge_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]], key: Sequence[str],
               merge: dict[str, str]) -> None:
    """Insert rows; where `key` is already taken, set each `merge` column to its SQL expression instead
    (written with {old} for the stored row and {new} for the incoming one, e.g. "{old}.seen + {new}.seen";
    every database this runs on must know the expression's functions)."""
    if not rows:
        return
    table = _table(model)
    sets = ", ".join(f"{c} = {e.format(old=table.name, new='excluded')}" for c, e in merge.items())
    tail = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
    pg = _pg(session)
    if pg is None:  # (one statement, a row each: SQLite has no round trips to save)
        columns = list(rows[0])
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
               f"{tail}")
        session.connection().execute(text(sql).bindparams(*[bindparam(c, type_=table.c[c].type) for c in columns]),
                                     list(rows))
        return
    _insert_select(pg, table, rows, tail)


def _insert_select(pg: Any, table: Table, rows: Sequence[dict[str, Any]], tail: str) -> list[tuple]:
    columns = list(rows[0])
    source, picks = _unnest(table, columns)
    cursor = pg.execute(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {picks} FROM {source} {tail}",
        _arrays(table, columns, rows))
    return cursor.fetchall() if cursor.description else []


def update_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]], key: str = "id") -> None:
    """Set each row's columns on the table row whose `key` it names (rows all have the same keys)."""
    if not rows:
        return
    table = _table(model)
    columns = list(rows[0])
    pg = _pg(session)
    if pg is None:
        sets = [c for c in columns if c != key]
        stmt = update(table).where(table.c[key] == bindparam("_key")).values({c: bindparam(c) for c in sets})
        # The key goes in as _key only: a parameter named after a column is SET too, and setting a primary key
        # (even to itself) makes SQLite check every table referencing it — a scan where that column has no index.
        session.connection().execute(stmt, [{**{c: r[c] for c in sets}, "_key": r[key]} for r in rows])
        return
    source, _ = _unnest(table, columns)
    types = _pg_types(table)
    sets = ", ".join(f"{c} = v.{c}::{types[c][0]}" if types[c][1] else f"{c} = v.{c}" for c in columns if c != key)
    pg.execute(f"UPDATE {table.name} SET {sets} FROM {source} WHERE {table.name}.{key} = v.{key}",
               _arrays(table, columns, rows))


def add_to(session: Session, model: Any, column: str, deltas: dict[int, int]) -> dict[int, int]:
    """Add each delta to the column of the row with that id; {id: new value}. The rows are changed in
    id order, so two writers adding to the same rows lock them in the same order."""
    if not deltas:
        return {}
    table = _table(model)
    pg = _pg(session)
    ids = sorted(deltas)
    if pg is None:
        stmt = (update(table).where(table.c.id == bindparam("_id"))
                .values({column: table.c[column] + bindparam("_delta")}).returning(table.c[column]))
        conn = session.connection()
        return {i: conn.execute(stmt, {"_id": i, "_delta": deltas[i]}).scalar_one() for i in ids}
    # The locks are taken by the ordered sub-select, not by the join's arbitrary order, and they are the UPDATE's
    # own (NO KEY): FOR UPDATE would conflict with the KEY SHARE locks that foreign-key checks of rows referencing
    # these take, and two writers that both checked a reference to a shared row (the programme's accounts) and then
    # both wanted FOR UPDATE on it deadlocked.
    sql = (f"WITH v AS (SELECT t.id, d.delta FROM {table.name} t JOIN unnest(%b::bigint[], %b::bigint[]) AS d(id, delta) "
           f"ON t.id = d.id ORDER BY t.id FOR NO KEY UPDATE OF t) "
           f"UPDATE {table.name} SET {column} = {table.name}.{column} + v.delta FROM v WHERE {table.name}.id = v.id "
           f"RETURNING {table.name}.id, {table.name}.{column}")
    return dict(pg.execute(sql, [ids, [deltas[i] for i in ids]]).fetchall())
