"""automations: definitions, runs, and who each run matched and what was done

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 07:00:00
"""
import sqlalchemy as sa
from alembic import op

import jifen.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('automations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('every', sa.String(length=8), nullable=True),
    sa.Column('event_type', sa.String(length=32), nullable=True),
    sa.Column('event_mark', sa.BigInteger(), nullable=False),
    sa.Column('condition', sa.String(length=4096), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('repeat', sa.String(length=8), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_run_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_run_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'code')
    )
    op.create_index('ix_automations_due', 'automations', ['active', 'next_run_at'], unique=False)
    op.create_table('automation_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('automation_id', sa.Integer(), nullable=False),
    sa.Column('cause', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('started_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('evaluated', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('acted', sa.Integer(), nullable=False),
    sa.Column('repeats', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['automation_id'], ['automations.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_automation_runs_automation', 'automation_runs', ['automation_id', 'id'], unique=False)
    op.create_table('automation_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurrence', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('done', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['automation_runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_automation_actions_member', 'automation_actions', ['member_pk'], unique=False)
    op.create_index('ix_automation_actions_run', 'automation_actions', ['run_id', 'id'], unique=False)
    op.create_table('automation_reaches',
    sa.Column('automation_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurrence', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reached_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['automation_id'], ['automations.id'], ),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['automation_runs.id'], ),
    sa.PrimaryKeyConstraint('automation_id', 'member_pk', 'occurrence')
    )


def downgrade() -> None:
    op.drop_table('automation_reaches')
    op.drop_index('ix_automation_actions_run', table_name='automation_actions')
    op.drop_index('ix_automation_actions_member', table_name='automation_actions')
    op.drop_table('automation_actions')
    op.drop_index('ix_automation_runs_automation', table_name='automation_runs')
    op.drop_table('automation_runs')
    op.drop_index('ix_automations_due', table_name='automations')
    op.drop_table('automations')
