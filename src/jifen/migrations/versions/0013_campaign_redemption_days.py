"""redemptions: the campaign whose double-value redemption days priced the order, the points saved, the
sponsor's part

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 09:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign', sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column('points_saved', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('sponsored', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_column('sponsored')
        batch_op.drop_column('points_saved')
        batch_op.drop_column('campaign')
