"""Jobs: governed runs submitted to the server (`governance/storage/jobs.py`).

Revision ID: 0002_jobs
Revises: 0001_baseline
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_jobs"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made before migrations is completed with every model's table before it is stamped
    # at the baseline (`Workspace.upgrade_db`), so the table may already be there.
    if sa.inspect(op.get_bind()).has_table("jobs"):
        return
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_uid', sa.String(length=32), nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('pipeline', sa.String(length=500), nullable=False),
    sa.Column('dataset_name', sa.String(length=200), nullable=False),
    sa.Column('pipeline_sha256', sa.String(length=64), nullable=False),
    sa.Column('pipeline_json', sa.Text(), nullable=False),
    sa.Column('data_dir', sa.Text(), nullable=False),
    sa.Column('run_uid', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_uid')
    )
    op.create_index(op.f('ix_jobs_job_uid'), 'jobs', ['job_uid'], unique=True)
    op.create_index(op.f('ix_jobs_principal'), 'jobs', ['principal'], unique=False)
    op.create_index(op.f('ix_jobs_state'), 'jobs', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_jobs_state'), table_name='jobs')
    op.drop_index(op.f('ix_jobs_principal'), table_name='jobs')
    op.drop_index(op.f('ix_jobs_job_uid'), table_name='jobs')
    op.drop_table('jobs')
