"""Admin commands: policies, principals, tokens, keys, access review."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from governance.access.authorize import require_admin
from governance.cli.common import (
    ExitCode, JsonOpt, TokenOpt, WorkspaceOpt, _console, _open, _token, access_app, emit, jsonable, keys_app, policy_app,
    principal_app, token_app,
)


# --------------------------------------------------------------------------- policy
@policy_app.command("test")
def policy_test(policy: Path, cases: Path, as_json: bool = JsonOpt) -> None:
    """Run a table of expected decisions against a policy; exit 1 if any case fails."""
    from policies.casetest import run_cases

    rep = run_cases(policy, cases)
    emit({**jsonable(rep), "ok": rep.ok, "passed": rep.passed, "total": rep.total}, as_json,
         lambda: _console().print(rep.format()))
    raise typer.Exit(ExitCode.OK if rep.ok else ExitCode.VALIDATION_FAILED)


@policy_app.command("bind")
def policy_bind(
    dataset: str = typer.Argument(..., help="Dataset name (created if new)."),
    policy: Path = typer.Argument(..., help="Policy YAML to bind; stored by content hash."),
    tags: Optional[str] = typer.Option(None, "--tags", help="Comma-separated dataset tags the policy matches on "
                                       "(default: keep the current tags; none for a new dataset)."),
    privacy_unit: Optional[str] = typer.Option(None, "--privacy-unit",
                                               help="A check only: the privacy unit the policy's `privacy:` section "
                                                    "must declare (the unit is set by the policy text)."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Bind a policy to a dataset (admin only): the only policy its decisions, budget cap and privacy unit follow.

    The privacy unit and its rows bound come from the policy's `privacy:` section; a policy that grants
    `train` without one is refused. Rebinding an edited policy takes effect at once for every later
    decision; no re-run is needed."""
    from governance.access.binding import bind_policy

    ws = _open(workspace)
    with ws.lock():
        admin = require_admin(ws, _token(token), "policy_bind", resource=dataset)
        b = bind_policy(ws, admin, dataset, policy,
                        tags=None if tags is None else [x.strip() for x in tags.split(",") if x.strip()],
                        privacy_unit=privacy_unit)
        with ws.session() as s:
            ws.audit.checkpoint(s)
    cap = f"ε={b.cap[0]:g}, δ={b.cap[1]:g}" if b.cap else "none (training is refused)"
    was = f" (was {b.previous_hash[:12]})" if b.previous_hash else ""
    rows = (f" (at most {b.max_rows_per_unit} rows per unit)" if b.max_rows_per_unit and b.privacy_unit != "row"
            else "" if b.max_rows_per_unit else " (the policy declares no unit: training is refused)")
    emit(b, as_json, lambda: _console().print(
        f"bound policy `{b.policy_name}` sha256 {b.policy_hash[:12]}{was} to `{dataset}`; "
        f"tags {list(b.tags)}; privacy unit {b.privacy_unit}{rows}; budget cap {cap}"))


# --------------------------------------------------------------------------- identity
@principal_app.command("add")
def principal_add(
    name: str,
    roles: str = typer.Option("", "--roles", help="Comma-separated roles."),
    kind: str = typer.Option("person", "--kind", help="person | service"),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Add a principal (admin only)."""
    from governance.access.identity import add_principal

    ws = _open(workspace)
    who = require_admin(ws, _token(token), "principal_add").name
    with ws.session() as s:
        add_principal(s, name, kind=kind, roles=[r for r in roles.split(",") if r])
        ws.audit.record(s, principal=who, action="principal_add", decision="info", details={"name": name})
    emit({"principal": name, "kind": kind, "roles": [r for r in roles.split(",") if r]}, as_json,
         lambda: _console().print(f"added {kind} `{name}`"))


@principal_app.command("list")
def principal_list(workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Principals, roles and status."""
    from rich.table import Table

    from governance.access.identity import list_principals

    ws = _open(workspace)
    table = Table("name", "kind", "roles", "created", "revoked")
    found = []
    with ws.session() as s:
        for p in list_principals(s):
            found.append({"name": p.name, "kind": p.kind, "roles": list(p.roles or []), "created_at": p.created_at,
                          "revoked_at": p.revoked_at})
            table.add_row(p.name, p.kind, ",".join(p.roles or []), str(p.created_at)[:19], str(p.revoked_at or "")[:19])
    emit(found, as_json, lambda: _console().print(table))


@principal_app.command("revoke")
def principal_revoke(name: str, workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt,
                     as_json: bool = JsonOpt) -> None:
    """Revoke a principal and all its tokens (admin only)."""
    from governance.access.identity import revoke_principal

    ws = _open(workspace)
    who = require_admin(ws, _token(token), "principal_revoke").name
    with ws.session() as s:
        revoke_principal(s, name)
        ws.audit.record(s, principal=who, action="principal_revoke", decision="info", details={"name": name})
    emit({"principal": name, "revoked": True}, as_json, lambda: _console().print(f"revoked `{name}`"))


@token_app.command("issue")
def token_issue(
    name: str,
    ttl_days: int = typer.Option(90, "--ttl-days", min=1),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Issue an API token for a principal (admin only); it is printed once."""
    from governance.access.identity import issue_token

    ws = _open(workspace)
    who = require_admin(ws, _token(token), "token_issue").name
    with ws.session() as s:
        new = issue_token(s, name, ttl_days=ttl_days)
        ws.audit.record(s, principal=who, action="token_issue", decision="info",
                        details={"principal": name, "ttl_days": ttl_days})
    emit({"principal": name, "ttl_days": ttl_days, "token": new}, as_json, lambda: print(new))


# --------------------------------------------------------------------------- keys
@keys_app.command("rotate")
def keys_rotate(workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt,
                as_json: bool = JsonOpt) -> None:
    """New key-encryption key; every data key is re-wrapped (no data re-encryption)."""
    ws = _open(workspace)
    with ws.lock():
        who = require_admin(ws, _token(token), "keys_rotate").name
        with ws.session() as s:
            from governance.storage.key_providers import rotation_passphrase

            kek = ws.keyring.rotate(s, new_passphrase=rotation_passphrase(ws.keyring))
            ws.audit.record(s, principal=who, action="keys_rotate", decision="info", details={"kek_id": kek})
            ws.audit.checkpoint(s)
    emit({"active_kek_id": kek}, as_json,
         lambda: _console().print(f"active key-encryption key is now {kek}; all data keys re-wrapped"))


@keys_app.command("retire")
def keys_retire(kek_id: str, workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt,
                as_json: bool = JsonOpt) -> None:
    """Remove an old key-encryption key once nothing is wrapped under it."""
    ws = _open(workspace)
    with ws.lock():
        who = require_admin(ws, _token(token), "keys_retire").name
        with ws.session() as s:
            note = ws.keyring.retire(kek_id, s)
            ws.audit.record(s, principal=who, action="keys_retire", decision="info", details={"kek_id": kek_id})
    emit({"retired": kek_id, "not_destroyed": note}, as_json,
         lambda: _console().print(f"retired {kek_id}" + (f"; not destroyed: {note}" if note else "")))


# --------------------------------------------------------------------------- access review
@access_app.command("review")
def access_review(workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Who can do what on which dataset under the bound policies, and when each grant was last used."""
    from rich.table import Table

    from governance.access.review import review

    ws = _open(workspace)
    columns = ("dataset", "principal", "roles", "action", "purposes", "grant", "expires", "last used")
    table = Table(*columns)
    rows = []
    with ws.session() as s:
        for row in review(s):
            rows.append(dict(zip([c.replace(" ", "_") for c in columns], row)))
            table.add_row(*[str(x) if x is not None else "" for x in row])
    emit(rows, as_json, lambda: _console().print(table))
