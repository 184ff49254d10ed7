"""The set path's writers (jifen/rows.py) on both databases, below and above the size where PostgreSQL
switches to COPY / unnest: rows land as given, and an update changes only the columns it names."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from jifen.db import run_in_transaction
from jifen.ledger.models import Account
from jifen.members.models import Member
from jifen.programs.service import get_program
from jifen.rows import COPY_FROM, add_to, update_rows
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
    if n < COPY_FROM or engine.dialect.name == "sqlite":  # (PostgreSQL's unnest path runs on the raw connection)
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
