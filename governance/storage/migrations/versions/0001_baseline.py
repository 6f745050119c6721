"""Baseline: the schema privgov had when migrations began (catalog, identity, keys, audit, ledger, runs).

Why written out and not `create_all`: a migration must describe one fixed
schema, whatever the models look like later. Workspaces created before
migrations existed are stamped at this revision by `privgov db upgrade`.

Revision ID: 0001_baseline
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('ts', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_checkpoints_seq'), 'audit_checkpoints', ['seq'], unique=False)
    op.create_table('audit_events',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ts', sa.String(length=40), nullable=False),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('resource', sa.String(length=500), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=True),
    sa.Column('decision', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('epsilon', sa.Float(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('hash')
    )
    op.create_table('budgets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lineage_id', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=200), nullable=False),
    sa.Column('epsilon_cap', sa.Float(), nullable=False),
    sa.Column('delta_cap', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('rdp_order', sa.Float(), nullable=True),
    sa.Column('basic_share', sa.Float(), nullable=True),
    sa.Column('needs_decision', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('uq_budgets_lineage', 'budgets', ['lineage_id'], unique=True)
    op.create_table('data_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kek_id', sa.String(length=32), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('destroyed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_data_keys_kek_id'), 'data_keys', ['kek_id'], unique=False)
    op.create_table('datasets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lineage_id', sa.String(length=64), nullable=False),
    sa.Column('privacy_unit', sa.String(length=200), nullable=True),
    sa.Column('row_id_column', sa.String(length=200), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('policy_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_index(op.f('ix_datasets_lineage_id'), 'datasets', ['lineage_id'], unique=False)
    op.create_table('lineage_edges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parent_kind', sa.String(length=20), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=False),
    sa.Column('child_kind', sa.String(length=20), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_lineage_edges_child_id'), 'lineage_edges', ['child_id'], unique=False)
    op.create_index(op.f('ix_lineage_edges_parent_id'), 'lineage_edges', ['parent_id'], unique=False)
    op.create_table('policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('content_hash')
    )
    op.create_table('principals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_uid', sa.String(length=64), nullable=False),
    sa.Column('pipeline', sa.String(length=500), nullable=False),
    sa.Column('dataset_name', sa.String(length=200), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('principal', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('epsilon', sa.Float(), nullable=True),
    sa.Column('delta', sa.Float(), nullable=True),
    sa.Column('metrics_json', sa.JSON(), nullable=False),
    sa.Column('model_card_json', sa.JSON(), nullable=False),
    sa.Column('model_blob_hash', sa.String(length=64), nullable=True),
    sa.Column('model_data_key_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('affected_by_erasure', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_uid')
    )
    op.create_table('training_checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_uid', sa.String(length=64), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('steps_total', sa.Integer(), nullable=False),
    sa.Column('blob_hash', sa.String(length=64), nullable=False),
    sa.Column('data_key_id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_uid')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.String(length=16), nullable=False),
    sa.Column('principal_id', sa.Integer(), nullable=False),
    sa.Column('secret_hash', sa.LargeBinary(), nullable=False),
    sa.Column('salt', sa.LargeBinary(), nullable=False),
    sa.Column('scrypt_n', sa.Integer(), nullable=False),
    sa.Column('scrypt_r', sa.Integer(), nullable=False),
    sa.Column('scrypt_p', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['principal_id'], ['principals.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_api_tokens_principal_id'), 'api_tokens', ['principal_id'], unique=False)
    op.create_index(op.f('ix_api_tokens_token_id'), 'api_tokens', ['token_id'], unique=True)
    op.create_table('dataset_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('blob_hash', sa.String(length=64), nullable=False),
    sa.Column('data_key_id', sa.Integer(), nullable=True),
    sa.Column('row_count', sa.BigInteger(), nullable=False),
    sa.Column('unit_count', sa.BigInteger(), nullable=True),
    sa.Column('schema_json', sa.JSON(), nullable=False),
    sa.Column('steps_json', sa.JSON(), nullable=False),
    sa.Column('meta_json', sa.JSON(), nullable=False),
    sa.Column('validation_status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('erased_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
    sa.ForeignKeyConstraint(['parent_id'], ['dataset_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_dataset_versions_dataset_id'), 'dataset_versions', ['dataset_id'], unique=False)
    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('budget_id', sa.Integer(), nullable=False),
    sa.Column('run_uid', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('epsilon', sa.Float(), nullable=False),
    sa.Column('target_epsilon', sa.Float(), nullable=False),
    sa.Column('delta', sa.Float(), nullable=False),
    sa.Column('orders', sa.Text(), nullable=True),
    sa.Column('rdp', sa.Text(), nullable=True),
    sa.Column('reserved_at', sa.DateTime(), nullable=False),
    sa.Column('committed_at', sa.DateTime(), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['budget_id'], ['budgets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_uid')
    )
    op.create_index(op.f('ix_ledger_entries_budget_id'), 'ledger_entries', ['budget_id'], unique=False)
    op.create_table('validations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('dataset_name', sa.String(length=200), nullable=False),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('suite_name', sa.String(length=200), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('evaluated', sa.Integer(), nullable=False),
    sa.Column('failed_expectations', sa.Integer(), nullable=False),
    sa.Column('failing_rows', sa.BigInteger(), nullable=False),
    sa.Column('result_json', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['dataset_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('validations')
    op.drop_index(op.f('ix_ledger_entries_budget_id'), table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_index(op.f('ix_dataset_versions_dataset_id'), table_name='dataset_versions')
    op.drop_table('dataset_versions')
    op.drop_index(op.f('ix_api_tokens_token_id'), table_name='api_tokens')
    op.drop_index(op.f('ix_api_tokens_principal_id'), table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_table('training_checkpoints')
    op.drop_table('runs')
    op.drop_table('principals')
    op.drop_table('policies')
    op.drop_index(op.f('ix_lineage_edges_parent_id'), table_name='lineage_edges')
    op.drop_index(op.f('ix_lineage_edges_child_id'), table_name='lineage_edges')
    op.drop_table('lineage_edges')
    op.drop_index(op.f('ix_datasets_lineage_id'), table_name='datasets')
    op.drop_table('datasets')
    op.drop_index(op.f('ix_data_keys_kek_id'), table_name='data_keys')
    op.drop_table('data_keys')
    op.drop_index('uq_budgets_lineage', table_name='budgets')
    op.drop_table('budgets')
    op.drop_table('audit_events')
    op.drop_index(op.f('ix_audit_checkpoints_seq'), table_name='audit_checkpoints')
    op.drop_table('audit_checkpoints')
