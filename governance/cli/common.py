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


def _authenticated(ws, s, token: Optional[str], action: str, resource: Optional[str] = None,
                   purpose: Optional[str] = None):
    """The token's principal; a missing or bad token is audited as a deny before it is raised."""
    from governance.access.identity import authenticate
    from privacy.errors import AccessDenied

    tok = _token(token)
    try:
        if not tok:
            raise AccessDenied(f"`{action}` needs an API token: pass --token or set PRIVGOV_TOKEN")
        return authenticate(s, tok)
    except AccessDenied as exc:
        ws.audit.record(s, principal="anonymous", action=action, decision="deny", resource=resource,
                        purpose=purpose, reason=str(exc))
        raise


def _require_admin(ws, token: Optional[str], action: str) -> str:
    """Admin operations need a token whose principal has the `admin` role; audited either way."""
    from privacy.errors import AccessDenied

    with ws.session() as s:
        p = _authenticated(ws, s, token, action)
        if "admin" not in (p.roles or []):
            ws.audit.record(s, principal=p.name, action=action, decision="deny", reason="principal lacks role admin")
            raise AccessDenied(f"`{action}` needs the admin role; `{p.name}` has {sorted(p.roles or [])}")
        ws.audit.record(s, principal=p.name, action=action, decision="allow")
        return p.name



# --------------------------------------------------------------------------- governed reads
def _authorize(ws, token: Optional[str], action: str, dataset_name: str, purpose: Optional[str]):
    """Authenticate, decide under the dataset's recorded policy, audit; return (principal, decision, ds)."""
    from governance.storage import catalog
    from governance.storage.store import PolicyRecord, utcnow
    from policies.engine import Request, decide
    from policies.schema import parse_policy
    from privacy.errors import AccessDenied

    with ws.session() as s:
        ds = catalog.find_dataset(s, dataset_name)
        p = _authenticated(ws, s, token, action, dataset_name, purpose)
        rec = s.query(PolicyRecord).filter(PolicyRecord.content_hash == ds.policy_hash).one_or_none()
        if rec is None:
            ws.audit.record(s, principal=p.name, action=action, decision="deny", resource=dataset_name,
                            purpose=purpose, reason="no policy bound to dataset")
            raise AccessDenied(f"dataset `{dataset_name}` has no policy bound; nobody may `{action}` it (deny by default)")
        policy = parse_policy(rec.text, source=f"policy {rec.name}")
        d = decide(Request(principal=p.name, roles=list(p.roles or []), action=action, dataset=dataset_name,
                           tags=list(ds.tags or []), purpose=purpose, now=utcnow()), policy)
        ws.audit.record(s, principal=p.name, action=action, decision="allow" if d.allowed else "deny",
                        resource=dataset_name, purpose=purpose, reason=d.reason)
        if not d.allowed:
            raise AccessDenied(f"`{p.name}` may not `{action}` `{dataset_name}` for purpose `{purpose}`: {d.reason}")
        return p.name, d, ds
