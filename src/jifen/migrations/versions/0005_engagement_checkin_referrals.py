"""engagement checkin referrals

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:55:36.771078
"""
import sqlalchemy as sa
from alembic import op

import jifen.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('invite_codes',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('code'),
    sa.UniqueConstraint('member_pk')
    )
    op.create_table('makeup_cards',
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cards', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.PrimaryKeyConstraint('member_pk')
    )
    op.create_table('referrals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('inviter_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('invitee_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['invitee_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['inviter_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invitee_pk')
    )


def downgrade() -> None:
    op.drop_table('referrals')
    op.drop_table('makeup_cards')
    op.drop_table('invite_codes')
