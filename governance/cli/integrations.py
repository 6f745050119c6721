"""`privgov lineage ...` and `privgov tracking ...`: where a workspace sends evidence outside itself.

Both are off until an admin turns them on; every change is audited with the
admin's authenticated identity. `show` reads the settings only (no token).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import JsonOpt, TokenOpt, WorkspaceOpt, _console, _open, _token, app, emit

lineage_app = typer.Typer(help="OpenLineage events of governed runs (off by default).", no_args_is_help=True)
tracking_app = typer.Typer(help="MLflow tracking of training runs (off by default; needs the mlflow extra).",
                           no_args_is_help=True)
app.add_typer(lineage_app, name="lineage")
app.add_typer(tracking_app, name="tracking")



def _state(settings: object | None) -> dict:
    return {"enabled": settings is not None, **(settings.model_dump() if settings is not None else {})}  # type: ignore[attr-defined]


def _change(workspace: Optional[Path], token: Optional[str], action: str, section: str, value: object,
            details: dict) -> None:
    """Admin only, under the workspace lock: write the settings and audit the change (who, what, where)."""
    from governance.access.authorize import require_admin
    from governance.evidence import integrations

    ws = _open(workspace)
    with ws.lock():
        admin = require_admin(ws, _token(token), action)
        current = integrations.load(ws.root)
        integrations.save(ws.root, current.model_copy(update={section: value}))
        with ws.session() as s:
            ws.audit.record(s, principal=admin.name, action=action, decision="info", details=details)
            ws.audit.checkpoint(s)


# --------------------------------------------------------------------------- lineage
@lineage_app.command("configure")
def lineage_configure(
    file: Optional[Path] = typer.Option(None, "--file", help="Append events as JSON lines to this file."),
    url: Optional[str] = typer.Option(None, "--url", help="POST events to URL/api/v1/lineage (Marquez and others)."),
    namespace: str = typer.Option("privgov", "--namespace", help="OpenLineage job namespace."),
    api_key_env: Optional[str] = typer.Option(None, "--api-key-env",
                                              help="HTTP only: environment variable holding a bearer token "
                                                   "(the token itself is never stored)."),
    timeout_s: float = typer.Option(5.0, "--timeout", help="HTTP timeout in seconds per event."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Send each governed run's START and COMPLETE/FAIL events to a file or an HTTP endpoint (admin only)."""
    from governance.evidence.integrations import lineage_settings

    settings = lineage_settings(file=file, url=url, namespace=namespace, api_key_env=api_key_env, timeout_s=timeout_s)
    kind, where = settings.transport, settings.target
    _change(workspace, token, "lineage_configure", "lineage", settings,
            {"transport": kind, "target": where, "namespace": namespace, "api_key_env": api_key_env})
    emit(_state(settings), as_json, lambda: _console().print(
        f"lineage on: {kind} transport to {where} (namespace {namespace}); "
        "events: START, COMPLETE or FAIL per governed run"))


@lineage_app.command("off")
def lineage_off(workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt,
                as_json: bool = JsonOpt) -> None:
    """Stop sending OpenLineage events (admin only)."""
    _change(workspace, token, "lineage_off", "lineage", None, {})
    emit(_state(None), as_json, lambda: _console().print("lineage off: governed runs emit no OpenLineage events"))


@lineage_app.command("show")
def lineage_show(workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Where OpenLineage events go, or that they are off."""
    from governance.evidence.integrations import load

    settings = load(_open(workspace).root).lineage

    def human() -> None:
        if settings is None:
            _console().print("lineage: off (`privgov lineage configure --file PATH | --url URL` turns it on)")
            return
        key = f"; bearer token from ${settings.api_key_env}" if settings.api_key_env else ""
        _console().print(f"lineage: on; {settings.transport} transport to {settings.target}; "
                         f"namespace {settings.namespace}{key}")

    emit(_state(settings), as_json, human)


# --------------------------------------------------------------------------- tracking
@tracking_app.command("configure")
def tracking_configure(
    uri: str = typer.Option(..., "--uri", help="MLflow tracking URI, e.g. file:/path/mlruns or http://host:5000."),
    experiment: str = typer.Option("privgov", "--experiment", help="MLflow experiment name."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Log each training run's parameters, metrics, ε/δ and model card to MLflow (admin only)."""
    from governance.evidence.integrations import TrackingSettings, check_tracking_uri

    settings = TrackingSettings(uri=check_tracking_uri(uri), experiment=experiment)
    _change(workspace, token, "tracking_configure", "tracking", settings, {"uri": uri, "experiment": experiment})
    emit(_state(settings), as_json, lambda: _console().print(f"tracking on: MLflow at {uri}, experiment {experiment}"))


@tracking_app.command("off")
def tracking_off(workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt,
                 as_json: bool = JsonOpt) -> None:
    """Stop logging training runs to MLflow (admin only)."""
    _change(workspace, token, "tracking_off", "tracking", None, {})
    emit(_state(None), as_json, lambda: _console().print("tracking off: training runs are not logged to MLflow"))


@tracking_app.command("show")
def tracking_show(workspace: Optional[Path] = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Where training runs are logged, or that tracking is off."""
    from governance.evidence.integrations import load

    settings = load(_open(workspace).root).tracking
    emit(_state(settings), as_json, lambda: _console().print(
        "tracking: off (`privgov tracking configure --uri file:PATH` turns it on)" if settings is None else
        f"tracking: on; MLflow at {settings.uri}, experiment {settings.experiment}"))
