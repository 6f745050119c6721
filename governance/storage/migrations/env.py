"""Alembic environment for privgov: always runs on the connection privgov hands it.

Why no URL here: the workspace decides the database (and, on PostgreSQL, the
schema through `search_path`); `governance.storage.migrate` passes its open
connection in `config.attributes["connection"]`, so a migration can never hit
another database than the command's own.
"""
from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by running `alembic` by hand
    raise SystemExit("run migrations with `privgov db upgrade`, not the alembic command")
context.configure(connection=connection, target_metadata=context.config.attributes.get("metadata"),
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
