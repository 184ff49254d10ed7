"""The set path's writers (jifen/rows.py) on both databases, below and above the size where PostgreSQL
switches from unnest to COPY: rows land as given, and an update changes only the columns it names."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text

from jifen.db import among, make_engine, make_sessionmaker, run_in_transaction
from jifen.ledger.models import Account, JournalEntry, Lot
from jifen.members.models import Member
from jifen.programs.service import get_program
from jifen.rows import COPY_FROM, add_to, new_ids, select_rows, update_rows
from tests.support.intake import add_members, configure


@pytest.mark.parametrize("n", [3, COPY_FROM + 5])
def test_update_rows_sets_the_named_columns_and_never_the_key(factory, engine, n):
    configure(factory)
    ids = [f"u{i}" for i in range(n)]
    add_members(factory, *ids)
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def seen(conn, cursor, statement, *_):
        statements.append(statement)

    def tx(s):
        program = get_program(s, "default")
        members = s.scalars(select(Member).where(Member.program_id == program.id, Member.member_id.in_(ids))).all()
        update_rows(s, Member, [{"id": m.id, "tier": f"t{m.member_id}"} for m in members])

    run_in_transaction(factory, tx)
    event.remove(engine, "before_cursor_execute", seen)
    with factory() as s:
        tiers = dict(s.execute(select(Member.member_id, Member.tier).where(Member.member_id.in_(ids))).all())
    assert tiers == {mid: f"t{mid}" for mid in ids}
    if engine.dialect.name == "sqlite":  # (PostgreSQL's unnest path runs on the raw connection)
        updates = [st for st in statements if st.lstrip().upper().startswith("UPDATE MEMBERS")]
        assert updates and not any("id=" in st.split("WHERE")[0].replace(" ", "") for st in updates)


def test_add_to_returns_each_new_value(factory):
    configure(factory)
    add_members(factory, "a1", "a2")
    with factory() as s:
        accounts = s.scalars(select(Account.id).where(Account.member_pk.isnot(None)).order_by(Account.id)).all()
    deltas = {a: 10 * (i + 1) for i, a in enumerate(accounts)}
    result = run_in_transaction(factory, lambda s: add_to(s, Account, "balance", deltas))
    assert result == deltas  # (from zero)


def test_select_rows_gives_what_session_execute_gives_and_sees_unflushed_changes(factory):
    """The same rows as the ORM session's execute, literals the statement carries included (`balance > 0` is a
    parameter SQLAlchemy made), and a change still pending in the session is flushed before the read."""
    configure(factory)
    add_members(factory, "s1", "s2", "s3")
    stmt = (select(Account.id, Account.kind, Account.balance)
            .where(among(Account.member_pk, "members"), Account.balance > 0).order_by(Account.id))

    def tx(s):
        members = s.scalars(select(Member).where(Member.member_id.in_(["s1", "s2"])).order_by(Member.id)).all()
        pks = [m.id for m in members]
        funded = s.scalars(select(Account).where(Account.member_pk == pks[0]).order_by(Account.id)).first()
        funded.balance = 7  # pending in the session, not yet flushed
        return funded.id, pks, select_rows(s, stmt, {"members": pks}), [tuple(r) for r in s.execute(stmt, {"members": pks})]

    funded, pks, rows, expected = run_in_transaction(factory, tx)
    assert rows == expected == [(funded, rows[0][1], 7)]


def test_add_to_does_not_wait_for_a_reference_check_on_postgresql(pg_only_url):
    """Two writers that have both checked a reference to a shared row (a foreign-key check takes KEY SHARE: a
    posting to the programme's account) can both add to it: the first does not wait for the second's check (with
    FOR UPDATE it did, and each then waited for the other: a deadlock), the second waits for the first's commit."""
    engine = make_engine(pg_only_url)
    factory = make_sessionmaker(engine)
    configure(factory)
    with factory() as s:
        shared = s.scalar(select(Account.id).where(Account.member_pk.is_(None)).order_by(Account.id).limit(1))
    check = text("SELECT 1 FROM accounts WHERE id = :id FOR KEY SHARE")
    first, second = factory(), factory()
    try:
        for s in (first, second):
            s.execute(check, {"id": shared})
        first.execute(text("SET LOCAL lock_timeout = '2s'"))
        before = first.scalar(select(Account.balance).where(Account.id == shared))
        assert add_to(first, Account, "balance", {shared: 7}) == {shared: before + 7}  # (no lock timeout)
        first.commit()
        assert add_to(second, Account, "balance", {shared: 5}) == {shared: before + 12}
        second.commit()
    finally:
        first.close()
        second.close()
        engine.dispose()


def test_new_ids_gives_each_table_its_own_unused_keys(factory):
    """One call, several tables: n keys each, none given twice within the transaction (SQLite counts those it
    handed out but that are not inserted yet), and none an existing row holds."""
    configure(factory)
    add_members(factory, "n1")

    def tx(s):
        first = new_ids(s, 3, JournalEntry, Lot)
        second = new_ids(s, 2, JournalEntry, Lot)
        held = [set(s.scalars(select(model.id))) for model in (JournalEntry, Lot)]
        return first, second, held

    first, second, held = run_in_transaction(factory, tx)
    assert [len(ids) for ids in first] == [3, 3] and [len(ids) for ids in second] == [2, 2]
    for table in range(2):
        given = first[table] + second[table]
        assert len(set(given)) == 5 and not set(given) & held[table]
    assert new_ids(factory(), 0, JournalEntry) == [[]]
