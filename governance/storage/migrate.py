"""Schema versions of the workspace database, kept by Alembic (`governance/storage/migrations/`).

Why checked on every open: a shared server outlives any one privgov install.
An older privgov writing into a schema a newer one migrated (or the reverse)
would corrupt the ledger or the audit chain quietly, so a database whose
revision this code does not know is refused, and an older one is refused
until an operator runs `privgov db upgrade` once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from privacy.errors import WorkspaceError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001_baseline"
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: `revision` (None: unversioned), this code's `head`, and a verdict."""

    revision: str | None
    head: str
    state: str  # current | older | newer | unversioned | empty


def _config(conn: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    return _script().get_current_head()


def schema_state(engine: Engine) -> SchemaState:
    """Read the database's revision and compare it with the migrations this code ships."""
    from alembic.migration import MigrationContext

    script = _script()
    head = script.get_current_head()
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None:
        return SchemaState(None, head, "unversioned" if tables - {VERSION_TABLE} else "empty")
    if revision == head:
        return SchemaState(revision, head, "current")
    known = {r.revision for r in script.walk_revisions()}
    return SchemaState(revision, head, "older" if revision in known else "newer")


def check_current(engine: Engine, where: str) -> None:
    """Refuse a database this privgov must not write: newer, older or unversioned (`where` names it)."""
    st = schema_state(engine)
    if st.state == "current":
        return
    if st.state == "newer":
        raise WorkspaceError(
            f"database {where}: schema revision {st.revision} is newer than this privgov knows (head {st.head}); "
            "upgrade privgov before using this workspace"
        )
    was = "has no schema version (made before migrations)" if st.revision is None else f"is at revision {st.revision}"
    raise WorkspaceError(f"database {where}: schema {was}, this privgov needs {st.head}; run `privgov db upgrade`")


def upgrade(engine: Engine, *, stamp_baseline: bool = False) -> SchemaState:
    """Apply every migration up to head; `stamp_baseline` first marks an unversioned database as the baseline.

    The caller brings an unversioned database up to the baseline schema first
    (it knows every table module); stamping records that, then later revisions run."""
    from alembic import command

    with engine.begin() as conn:
        cfg = _config(conn)
        if stamp_baseline:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
    return schema_state(engine)


__all__ = ["BASELINE", "SchemaState", "check_current", "head_revision", "schema_state", "upgrade"]
