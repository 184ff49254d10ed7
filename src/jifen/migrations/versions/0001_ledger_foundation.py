"""ledger foundation

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 11:42:09.722983
"""
import sqlalchemy as sa
from alembic import op

import jifen.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('programs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('point_value', sa.Numeric(precision=14, scale=6), nullable=False),
    sa.Column('expiry_months', sa.Integer(), nullable=True),
    sa.Column('allow_debt', sa.Boolean(), nullable=False),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_table('chain_heads',
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('program_id')
    )
    op.create_table('idempotency_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('operation', sa.String(length=64), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'key')
    )
    op.create_table('members',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('joined_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'member_id')
    )
    op.create_table('wallets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'code')
    )
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wallet_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('wallet_id', 'member_pk', 'kind')
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index('uq_accounts_system', ['wallet_id', 'kind'], unique=True, sqlite_where=sa.text('member_pk IS NULL'), postgresql_where=sa.text('member_pk IS NULL'))

    op.create_table('journal_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('wallet_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('counterparty_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reverses_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('hold_id', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['counterparty_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.ForeignKeyConstraint(['reverses_entry_id'], ['journal_entries.id'], ),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'seq')
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index('ix_journal_reverses', ['reverses_entry_id'], unique=False)

    op.create_table('holds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('wallet_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('hold_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('settle_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('expires_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['hold_entry_id'], ['journal_entries.id'], ),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.ForeignKeyConstraint(['settle_entry_id'], ['journal_entries.id'], ),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index('ix_holds_open_expiry', ['status', 'expires_at'], unique=False)

    op.create_table('lots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wallet_id', sa.Integer(), nullable=False),
    sa.Column('source_entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('origin_lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('earned_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pending_until', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('available', sa.BigInteger(), nullable=False),
    sa.Column('pending', sa.BigInteger(), nullable=False),
    sa.Column('held', sa.BigInteger(), nullable=False),
    sa.Column('frozen', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['origin_lot_id'], ['lots.id'], ),
    sa.ForeignKeyConstraint(['source_entry_id'], ['journal_entries.id'], ),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.create_index('ix_lots_expirable', ['expires_at'], unique=False, sqlite_where=sa.text('available > 0'), postgresql_where=sa.text('available > 0'))
        batch_op.create_index('ix_lots_maturing', ['pending_until'], unique=False, sqlite_where=sa.text('pending > 0'), postgresql_where=sa.text('pending > 0'))
        batch_op.create_index('ix_lots_member_fifo', ['member_pk', 'wallet_id', 'expires_at'], unique=False)
        batch_op.create_index('ix_lots_source_entry', ['source_entry_id'], unique=False)

    op.create_table('postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_pk', sa.BigInteger(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_account', ['account_id'], unique=False)
        batch_op.create_index('ix_postings_entry', ['entry_id'], unique=False)
        batch_op.create_index('ix_postings_member_entry', ['member_pk', 'entry_id'], unique=False)

    op.create_table('lot_moves',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], ),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lot_moves', schema=None) as batch_op:
        batch_op.create_index('ix_lot_moves_entry', ['entry_id'], unique=False)
        batch_op.create_index('ix_lot_moves_lot', ['lot_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('lot_moves', schema=None) as batch_op:
        batch_op.drop_index('ix_lot_moves_lot')
        batch_op.drop_index('ix_lot_moves_entry')

    op.drop_table('lot_moves')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index('ix_postings_member_entry')
        batch_op.drop_index('ix_postings_entry')
        batch_op.drop_index('ix_postings_account')

    op.drop_table('postings')
    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('ix_lots_source_entry')
        batch_op.drop_index('ix_lots_member_fifo')
        batch_op.drop_index('ix_lots_maturing', sqlite_where=sa.text('pending > 0'), postgresql_where=sa.text('pending > 0'))
        batch_op.drop_index('ix_lots_expirable', sqlite_where=sa.text('available > 0'), postgresql_where=sa.text('available > 0'))

    op.drop_table('lots')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index('ix_holds_open_expiry')

    op.drop_table('holds')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_reverses')

    op.drop_table('journal_entries')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('uq_accounts_system', sqlite_where=sa.text('member_pk IS NULL'), postgresql_where=sa.text('member_pk IS NULL'))

    op.drop_table('accounts')
    op.drop_table('wallets')
    op.drop_table('members')
    op.drop_table('idempotency_records')
    op.drop_table('chain_heads')
    op.drop_table('api_keys')
    op.drop_table('programs')
