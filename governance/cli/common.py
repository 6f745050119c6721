"""`privgov` command line: the Typer apps, shared options and helpers.

Why this shape: pipelines (Airflow, Dagster, cron) call it and branch on the
exit code, people read its output. Every failure is one line `error: ...` on
stderr with a stable exit code (1 quality gate, 2 bad input, 3 denied, 4
integrity). Only typer is imported at start-up: `privgov --help` must stay well
under a second, so torch, Great Expectations, pandas and SQLAlchemy are imported
inside the commands that need them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="privgov",
    help="Privacy-focused data governance: quality gates, de-identification, encryption at rest, "
    "policy-as-code, differentially private training and a tamper-evident audit log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dataset_app = typer.Typer(help="Datasets, versions, lineage, export and erasure.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained, signed audit log.", no_args_is_help=True)
budget_app = typer.Typer(help="Privacy budget ledger.", no_args_is_help=True)
quality_app = typer.Typer(help="Validate data with Great Expectations suites.", no_args_is_help=True)
pii_app = typer.Typer(help="Detect and transform personal data.", no_args_is_help=True)
policy_app = typer.Typer(help="Policy-as-code: test policies against expected decisions.", no_args_is_help=True)
principal_app = typer.Typer(help="People and service accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys: rotation and retirement.", no_args_is_help=True)
access_app = typer.Typer(help="Access reviews.", no_args_is_help=True)
sample_app = typer.Typer(help="Built-in sample data generators.", no_args_is_help=True)
for sub, name in [
    (dataset_app, "dataset"), (audit_app, "audit"), (budget_app, "budget"), (quality_app, "quality"),
    (pii_app, "pii"), (policy_app, "policy"), (principal_app, "principal"), (token_app, "token"),
    (keys_app, "keys"), (access_app, "access"), (sample_app, "sample"),
]:
    app.add_typer(sub, name=name)

WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="Workspace directory (default $PRIVGOV_WORKSPACE or ./.privgov).")
TokenOpt = typer.Option(None, "--token", help="API token (default $PRIVGOV_TOKEN).")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _open(workspace: Optional[Path]):
    from governance.workspace import Workspace, resolve_root

    return Workspace.open(resolve_root(workspace))


def _token(token: Optional[str]) -> Optional[str]:
    return token or os.environ.get("PRIVGOV_TOKEN")
