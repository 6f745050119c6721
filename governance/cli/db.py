"""`privgov db`: the workspace database's schema version (Alembic migrations)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import JsonOpt, WorkspaceOpt, _console, app, emit

db_app = typer.Typer(help="The workspace database: schema version and migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Migrate the workspace database to this privgov's schema (run once after upgrading privgov)."""
    from governance.workspace import Workspace, resolve_root

    root = resolve_root(workspace)
    before, after = Workspace.upgrade_db(root)
    was = before.revision or ("empty" if before.state == "empty" else "unversioned")
    msg = (f"database schema already at {after.revision} (head)" if before.revision == after.revision
           else f"database schema upgraded: {was} -> {after.revision}")
    emit({"before": before.revision, "before_state": before.state, "revision": after.revision,
          "upgraded": before.revision != after.revision}, as_json, lambda: _console().print(msg))


@db_app.command("status")
def db_status(workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Print the database (password redacted), its schema and revision against this privgov's head."""
    from governance.storage.database import configured_url, open_engine, redact
    from governance.storage.migrate import schema_state
    from governance.workspace import Workspace, resolve_root

    root = resolve_root(workspace)
    config = Workspace._read_config(root)
    engine = open_engine(root, config)
    st = schema_state(engine)
    engine.dispose()
    schema = f" schema {config['db_schema']}" if config.get("db_schema") else ""
    url = redact(configured_url(root, config))
    emit({"database": url, "schema": config.get("db_schema"), "revision": st.revision, "head": st.head,
          "state": st.state}, as_json,
         lambda: _console().print(f"database {url}{schema}: revision {st.revision or '-'}, head {st.head} ({st.state})"))
    raise typer.Exit(0 if st.state == "current" else 2)
