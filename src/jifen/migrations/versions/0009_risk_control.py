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
    op.create_table('risk_scans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('findings', sa.Integer(), nullable=False),
    sa.Column('cases_opened', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_risk_scans_program_id'), 'risk_scans', ['program_id'], unique=False)
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
    op.create_table('member_restrictions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('until', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('appeal', sa.String(length=2000), nullable=True),
    sa.Column('appealed_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=200), nullable=True),
    sa.Column('lifted_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lift_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_member_restrictions_member', 'member_restrictions', ['member_pk', 'status'], unique=False)
    op.create_table('risk_cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('member_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=128), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', jifen.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision', sa.String(length=16), nullable=True),
    sa.Column('decision_note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], ),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_risk_cases_status', 'risk_cases', ['program_id', 'status', 'id'], unique=False)
    op.create_index('ix_risk_cases_subject', 'risk_cases', ['program_id', 'subject_kind', 'subject_id'], unique=False)
    op.create_table('risk_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('trained_at', jifen.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('n_samples', sa.Integer(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('model', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_risk_models_program', 'risk_models', ['program_id', 'id'], unique=False)
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('honeypot', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    op.drop_index(op.f('ix_risk_scans_program_id'), table_name='risk_scans')
    op.drop_table('risk_scans')
    with op.batch_alter_table('programs', schema=None) as batch_op:
        batch_op.drop_column('risk')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_column('risk')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_column('honeypot')
    op.drop_index('ix_risk_models_program', table_name='risk_models')
    op.drop_table('risk_models')
    op.drop_index('ix_risk_cases_subject', table_name='risk_cases')
    op.drop_index('ix_risk_cases_status', table_name='risk_cases')
    op.drop_table('risk_cases')
    op.drop_index('ix_member_restrictions_member', table_name='member_restrictions')
    op.drop_table('member_restrictions')
    op.drop_index('ix_member_devices_member', table_name='member_devices')
    op.drop_table('member_devices')
