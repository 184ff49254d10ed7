"""chain checkpoints: how far each programme's hash chain was last proven whole

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 14:00:00
"""
import sqlalchemy as sa
from alembic import op

import jifen.db

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chain_checkpoints',
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('verified_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('program_id')
    )


def downgrade() -> None:
    op.drop_table('chain_checkpoints')
