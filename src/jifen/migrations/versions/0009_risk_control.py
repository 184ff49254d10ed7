"""risk control: scores, review queue, blacklists, devices

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 16:30:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import jifen.db  # noqa: F401

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('member_devices',
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('first_seen', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seen', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('program_id', 'kind', 'value', 'member_pk')
    )
    op.create_index('ix_member_devices_member', 'member_devices', ['member_pk'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_member_devices_member', table_name='member_devices')
    op.drop_table('member_devices')
