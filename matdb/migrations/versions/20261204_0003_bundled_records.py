"""bundled records and dataset versions

Adds: bundled_record (which records the bundled data brought: the literature dataset and the
simulated demonstration set) and bundled_dataset (the version of each bundled dataset), so that
`matdb init --bundled` can replace an older bundled version without touching what a user loaded.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bundled_dataset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bundled_dataset')),
    sa.UniqueConstraint('name', name=op.f('uq_bundled_dataset_name'))
    )
    op.create_table('bundled_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset', sa.Text(), nullable=False),
    sa.Column('entity', sa.Text(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bundled_record')),
    sa.UniqueConstraint('entity', 'key', name='uq_bundled_record_entity_key')
    )
    with op.batch_alter_table('bundled_record', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bundled_record_dataset'), ['dataset'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bundled_record', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bundled_record_dataset'))
    op.drop_table('bundled_record')
    op.drop_table('bundled_dataset')
