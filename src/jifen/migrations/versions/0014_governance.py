"""governance: audit log search keys, who wrote a coupon off, adjustment requests (maker-checker)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:00:00

The audit log's `action` and `member_id` are derived from each line's path and detail
(security/audit_keys.py); lines written before are given theirs here, so the search finds them too.
"""
import sqlalchemy as sa
from alembic import op

import jifen.db
from jifen.security.audit_keys import action_of, member_of

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('audit_log', sa.Column('action', sa.String(length=16), nullable=True))
    op.add_column('audit_log', sa.Column('member_id', sa.String(length=64), nullable=True))
    op.create_index('ix_audit_program_seq', 'audit_log', ['program_id', 'seq'], unique=False)
    op.create_index('ix_audit_actor_seq', 'audit_log', ['program_id', 'actor', 'seq'], unique=False)
    op.create_index('ix_audit_action_seq', 'audit_log', ['program_id', 'action', 'seq'], unique=False)
    op.create_index('ix_audit_member_seq', 'audit_log', ['program_id', 'member_id', 'seq'], unique=False)
    log = sa.table('audit_log', sa.column('id', sa.BigInteger), sa.column('path', sa.String),
                   sa.column('detail', sa.JSON), sa.column('action', sa.String), sa.column('member_id', sa.String))
    bind, last = op.get_bind(), 0
    while rows := bind.execute(sa.select(log.c.id, log.c.path, log.c.detail).where(log.c.id > last)
                               .order_by(log.c.id).limit(5000)).all():
        bind.execute(sa.update(log).where(log.c.id == sa.bindparam('b_id')).values(
            action=sa.bindparam('b_action'), member_id=sa.bindparam('b_member')),
            [{'b_id': r.id, 'b_action': action_of(r.path), 'b_member': member_of(r.path, r.detail)} for r in rows])
        last = rows[-1].id

    op.add_column('coupons', sa.Column('used_by', sa.String(length=200), nullable=True))
    op.create_index('ix_coupons_used', 'coupons', ['program_id', 'used_at'], unique=False)

    op.create_table('adjustment_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('wallet_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('maker', sa.String(length=200), nullable=False),
    sa.Column('maker_user_id', sa.Integer(), nullable=True),
    sa.Column('checker', sa.String(length=200), nullable=True),
    sa.Column('entry_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_adjustment_requests_member', 'adjustment_requests', ['member_pk', 'id'], unique=False)
    op.create_index('ix_adjustment_requests_state', 'adjustment_requests', ['program_id', 'status', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_adjustment_requests_state', table_name='adjustment_requests')
    op.drop_index('ix_adjustment_requests_member', table_name='adjustment_requests')
    op.drop_table('adjustment_requests')
    op.drop_index('ix_coupons_used', table_name='coupons')
    op.drop_column('coupons', 'used_by')
    op.drop_index('ix_audit_member_seq', table_name='audit_log')
    op.drop_index('ix_audit_action_seq', table_name='audit_log')
    op.drop_index('ix_audit_actor_seq', table_name='audit_log')
    op.drop_index('ix_audit_program_seq', table_name='audit_log')
    op.drop_column('audit_log', 'member_id')
    op.drop_column('audit_log', 'action')
