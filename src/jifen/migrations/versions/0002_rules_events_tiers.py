"""rules events tiers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:33:39.620204
"""
import sqlalchemy as sa
from alembic import op

import jifen.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rule_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'version')
    )
    op.create_table('rule_usage',
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('member_pk', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('program_id', 'key', 'member_pk', 'period')
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('occurred_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=True),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('refunded_amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('points_reversed', sa.BigInteger(), nullable=False),
    sa.Column('received_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'event_id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_member_type_time', ['member_pk', 'type', 'occurred_at'], unique=False)
        batch_op.create_index('ix_events_order', ['program_id', 'order_id'], unique=False)
        batch_op.create_index('ix_events_program_time', ['program_id', 'occurred_at'], unique=False)

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('birthday', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('tier', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('tier_since', jifen.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('tier_grace_until', jifen.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('point_name', sa.String(length=32), nullable=False, server_default='積分'))
        batch_op.add_column(sa.Column('expiry_round', sa.String(length=16), nullable=False, server_default='none'))
        batch_op.add_column(sa.Column('pending_days', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('tiers', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('tiers_evaluated_at', jifen.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.drop_column('tiers_evaluated_at')
        batch_op.drop_column('tiers')
        batch_op.drop_column('pending_days')
        batch_op.drop_column('expiry_round')
        batch_op.drop_column('point_name')

    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('tier_grace_until')
        batch_op.drop_column('tier_since')
        batch_op.drop_column('tier')
        batch_op.drop_column('birthday')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_program_time')
        batch_op.drop_index('ix_events_order')
        batch_op.drop_index('ix_events_member_type_time')

    op.drop_table('events')
    op.drop_table('rule_usage')
    op.drop_table('rule_sets')
