"""privacy: consents, erasure, more encrypted personal data

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 16:30:00

Birthdays, delivery addresses and stored idempotency responses become encrypted text. Rows written
before stay readable as they are (a value without the `enc:` prefix is read as plain: an ISO date, JSON
text) until `jifen member rotate-keys` encrypts them; delivery addresses get their keyed hash now.
"""
import sqlalchemy as sa
from alembic import op

import jifen.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _retype(table: str, column: str, old: sa.types.TypeEngine, new: sa.types.TypeEngine, nullable: bool,
            cast: str) -> None:
    """Change a column's type keeping its values. PostgreSQL casts in place; SQLite gets a new column, the
    values copied, the old one dropped and the new one renamed — no table rebuild, which would drop a
    table other rows point at (members, redemptions) while foreign keys are enforced."""
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(table, column, existing_type=old, type_=new, existing_nullable=nullable,
                        postgresql_using=f"{column}::{cast}")
        return
    spare = f"{column}_retyped"
    op.add_column(table, sa.Column(spare, new, nullable=nullable, server_default=None if nullable else "{}"))
    op.execute(f"UPDATE {table} SET {spare} = {column}")
    op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN {spare} TO {column}")


def upgrade() -> None:
    op.create_table('consents',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('policy_version', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_consents_member_purpose', 'consents', ['member_pk', 'purpose', 'id'], unique=False)
    op.create_table('retention_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.add_column('members', sa.Column('erased_at', jifen.db.UTCDateTime(timezone=True), nullable=True))
    _retype('members', 'birthday', sa.Date(), sa.String(length=400), True, 'text')
    op.add_column('redemptions', sa.Column('address_hash', sa.String(length=64), nullable=True))
    op.create_index('ix_redemptions_address_hash', 'redemptions', ['address_hash'], unique=False)
    _retype('redemptions', 'address', sa.JSON(), sa.Text(), False, 'text')
    _retype('idempotency_records', 'response', sa.JSON(), sa.Text(), True, 'text')
    _hash_addresses()


def _hash_addresses() -> None:
    """The keyed hash of the addresses already there (only then are the data keys needed)."""
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, address FROM redemptions WHERE address IS NOT NULL AND address != '{}'"))
    rows = rows.all()
    if not rows:
        return
    from jifen.security.pii import EncryptedJSON, address_lookup

    reader = EncryptedJSON()
    for rid, stored in rows:
        digest = address_lookup(reader.process_result_value(stored, conn.dialect))
        if digest:
            conn.execute(sa.text("UPDATE redemptions SET address_hash = :h WHERE id = :id"), {"h": digest, "id": rid})


def _decrypt_column(table: str, column: str) -> None:
    """Downgrade: encrypted values back to plain text (ISO date, JSON), so the old types can take them."""
    from jifen.security.pii import decrypt

    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {column} LIKE 'enc:%'")).all()
    for rid, stored in rows:
        conn.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :id"), {"v": decrypt(stored), "id": rid})


def downgrade() -> None:
    for table, column in (("members", "birthday"), ("redemptions", "address"), ("idempotency_records", "response")):
        _decrypt_column(table, column)
    _retype('idempotency_records', 'response', sa.Text(), sa.JSON(), True, 'json')
    _retype('redemptions', 'address', sa.Text(), sa.JSON(), False, 'json')
    op.drop_index('ix_redemptions_address_hash', table_name='redemptions')
    op.drop_column('redemptions', 'address_hash')
    _retype('members', 'birthday', sa.String(length=400), sa.Date(), True, 'date')
    op.drop_column('members', 'erased_at')
    op.drop_table('retention_runs')
    op.drop_index('ix_consents_member_purpose', table_name='consents')
    op.drop_table('consents')
