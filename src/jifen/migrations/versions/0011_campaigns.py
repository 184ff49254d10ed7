"""campaigns (target, schedule, effect, budget, co-funding, rollout, holdout), A/B/n experiments, bandit arms

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 06:12:53.081314
"""
import sqlalchemy as sa
from alembic import op

import jifen.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bandit_arms',
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('bandit', sa.String(length=48), nullable=False),
    sa.Column('arm', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('pulls', sa.BigInteger(), nullable=False),
    sa.Column('rewards', sa.BigInteger(), nullable=False),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('program_id', 'bandit', 'arm')
    )
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('audience', sa.JSON(), nullable=False),
    sa.Column('effect', sa.JSON(), nullable=False),
    sa.Column('starts_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('budget', sa.BigInteger(), nullable=False),
    sa.Column('sponsor', sa.String(length=100), nullable=True),
    sa.Column('sponsor_share', sa.Numeric(precision=5, scale=4), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'code')
    )
    op.create_table('experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=48), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('arms', sa.JSON(), nullable=False),
    sa.Column('audience', sa.JSON(), nullable=False),
    sa.Column('metric', sa.String(length=16), nullable=False),
    sa.Column('starts_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('program_id', 'key')
    )


def downgrade() -> None:
    op.drop_table('experiments')
    op.drop_table('campaigns')
    op.drop_table('bandit_arms')
