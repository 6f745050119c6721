"""`privgov init` and `privgov report`: create a workspace, render its evidence."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from privacy.errors import WorkspaceError

from governance.cli.common import (
    JsonOpt, WorkspaceOpt, _console, _open, app, emit,
)


# --------------------------------------------------------------------------- workspace
@app.command()
def init(
    workspace: Optional[Path] = WorkspaceOpt,
    key_provider: str = typer.Option("file", help="Where the key-encryption key comes from: file | passphrase | env."),
    admin: str = typer.Option("admin", help="Name of the first admin principal."),
    audit_witness: Optional[Path] = typer.Option(None, "--audit-witness", help="Append-only file that receives "
                                                 "every signed audit head (default <workspace>/audit-witness.jsonl)."),
    db_url: Optional[str] = typer.Option(None, "--db-url", help="Shared PostgreSQL server, e.g. postgresql://user@host:5432/db "
                                         "(saved without password; the password comes from PRIVGOV_DB_PASSWORD, "
                                         "PGPASSWORD or --db-password-file)."),
    db_password_file: Optional[Path] = typer.Option(None, "--db-password-file", help="File holding the database "
                                                    "password (its path is saved, never the password)."),
    db_schema: Optional[str] = typer.Option(None, "--db-schema", help="PostgreSQL schema of this workspace "
                                            "(default privgov_<workspace id>)."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a workspace (SQLite DB, encrypted object store, keyring, audit log) and an admin principal."""
    from governance.access.identity import add_principal, issue_token
    from governance.workspace import CONFIG_NAME, Workspace, resolve_root

    root = resolve_root(workspace)
    if (root / CONFIG_NAME).exists():
        raise WorkspaceError(existing_workspace_message(root))
    passphrase = os.environ.get("PRIVGOV_PASSPHRASE") if key_provider == "passphrase" else None
    ws = Workspace.create(root, key_provider=key_provider, passphrase=passphrase, audit_witness=audit_witness,
                          db_url=db_url, db_password_file=db_password_file, db_schema=db_schema)
    with ws.lock(), ws.session() as s:
        add_principal(s, admin, kind="person", roles=["admin"])
        token = issue_token(s, admin, ttl_days=90)
        ws.audit.record(s, principal="local-admin", action="init", decision="info", details={"admin": admin})
        ws.audit.checkpoint(s)

    def human() -> None:
        out = _console()
        out.print(f"Workspace created at {root}")
        if db_url:
            from governance.storage.database import redact

            schema = f", schema {ws.config['db_schema']}" if ws.config.get("db_schema") else ""
            out.print(f"Metadata in {redact(ws.config['db_url'])}{schema}")
        out.print(f"Admin principal `{admin}`; its token is shown once — store it now:")
        print(token)

    emit({"workspace": root, "admin": admin, "token": token}, as_json, human)


def existing_workspace_message(root: Path) -> str:
    """What to do when `init` finds a workspace: a refusal that names the three ways on."""
    demo = root / "demo.token"
    saved = f"; `privgov demo` saved its principal's token in {demo}" if demo.is_file() else ""
    return (f"{root}: a workspace already exists here. To use it, pass its admin token with --token or "
            f"PRIVGOV_TOKEN (`privgov init` printed it once{saved}); to create another, pick a new "
            f"--workspace DIR; to start over, remove {root} (its keys go with it: nothing stored there "
            "can be read again)")


@app.command()
def report(
    out: Path = typer.Option(Path("reports/privgov-report.html"), "--out", help="HTML file to write."),
    since: Optional[str] = typer.Option(None, "--since", help="ISO date (or date-time, UTC): only what happened "
                                        "since then. The audit chain is always verified whole."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Only this dataset (its versions, runs, "
                                          "budget, policy and decisions)."),
    workspace: Optional[Path] = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write a self-contained offline HTML report: audit integrity, Art. 30 record, access review, lineage,
    data quality, de-identification, keys, budgets, runs, fairness, model cards and empirical audits."""
    from governance.evidence.report import Scope, parse_time, write_report
    from governance.storage import catalog

    scope = Scope(dataset=dataset, since=parse_time(since) if since else None)
    ws = _open(workspace)
    if dataset is not None:
        with ws.session() as s:
            catalog.find_dataset(s, dataset)  # a misspelt name is an error, not an empty report
    write_report(ws, out, scope)
    emit({"out": out, "scope": scope.describe()}, as_json,
         lambda: _console().print(f"report written to {out} ({scope.describe()})", markup=False))
