"""`privgov serve`: run the authenticated HTTP service (docs/server.md).

Why a thin wrapper over uvicorn: uvicorn owns sockets, TLS, workers and
signals; this command only checks the workspace and the limits, hands both to
each worker through the environment (`PRIVGOV_SERVER_WORKSPACE`,
`PRIVGOV_SERVER_SETTINGS`) and starts `governance.server.app:app_from_env`.
FastAPI and uvicorn are imported here, inside the command, so `privgov --help`
stays light.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import JsonOpt, WorkspaceOpt, _console, app, emit

FLAGS = {"max_body_bytes": "--max-body-bytes", "rate_per_second": "--rate", "rate_burst": "--burst",
         "auth_failures_per_minute": "--auth-failures-per-minute", "run_data_dir": "--data-dir"}

# uvicorn's own choices; `auto` takes the C implementations (uvicorn[standard]) when installed.
LOOPS = ("auto", "asyncio", "uvloop")
HTTP_IMPLS = ("auto", "h11", "httptools")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface; "
                             "then use TLS)."),
    port: int = typer.Option(8321, "--port", help="TCP port."),
    workspace: Optional[Path] = WorkspaceOpt,
    ssl_certfile: Optional[Path] = typer.Option(None, "--ssl-certfile", help="PEM certificate (chain): serve HTTPS."),
    ssl_keyfile: Optional[Path] = typer.Option(None, "--ssl-keyfile", help="PEM private key of --ssl-certfile."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (rate limits are per worker)."),
    max_body_bytes: int = typer.Option(1_048_576, "--max-body-bytes", help="Largest request body (413 above)."),
    rate: float = typer.Option(20.0, "--rate", help="Sustained requests per second per API token (429 above)."),
    burst: int = typer.Option(40, "--burst", help="Requests a token may send at once."),
    auth_failures: float = typer.Option(30.0, "--auth-failures-per-minute", help="Failed authentications "
                                        "allowed per client address per minute (429 above)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: critical|error|warning|info|debug."),
    loop: str = typer.Option("auto", "--loop", help="Event loop: auto (uvloop when installed), asyncio or uvloop."),
    http: str = typer.Option("auto", "--http", help="HTTP parser: auto (httptools when installed), h11 or "
                             "httptools."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory the files of pipelines submitted "
                                            "to POST /v1/runs must lie in (no links out of it)."),
    as_json: bool = JsonOpt,
) -> None:
    """Serve decisions, masked downloads and evidence over HTTP(S); every route but /healthz needs a token."""
    from pydantic import ValidationError

    from governance.server.settings import SETTINGS_ENV, WORKSPACE_ENV, ServerSettings
    from governance.workspace import Workspace, resolve_root
    from privacy.errors import InputError

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InputError("--ssl-certfile and --ssl-keyfile: give both (HTTPS) or neither (HTTP)")
    for opt, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if path is not None and not path.is_file():
            raise InputError(f"{opt} {path}: no such file (expected a PEM file)")
    for opt, value, allowed in (("--loop", loop, LOOPS), ("--http", http, HTTP_IMPLS)):
        if value not in allowed:
            raise InputError(f"{opt} {value[:40]!r}: expected one of {', '.join(allowed)}")
    if workers < 1:
        raise InputError(f"--workers: expected 1 or more, got {workers}")
    if not 0 <= port <= 65535:
        raise InputError(f"--port: expected 0-65535, got {port}")
    root = resolve_root(workspace).resolve()
    try:
        settings = ServerSettings(max_body_bytes=max_body_bytes, rate_per_second=rate, rate_burst=burst,
                                  auth_failures_per_minute=auth_failures,
                                  data_dir=str(root), run_data_dir=_run_data_dir(data_dir))
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = FLAGS.get(str(err["loc"][0]), str(err["loc"][0]))
        raise InputError(f"{flag}: {err['msg']}") from None
    Workspace.open(root).engine.dispose()  # a missing or outdated workspace stops here, before the port opens
    os.environ[WORKSPACE_ENV] = str(root)
    os.environ[SETTINGS_ENV] = settings.to_env()

    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    scheme = "https" if ssl_certfile else "http"
    started = {"url": f"{scheme}://{host}:{port}", "workspace": root, "workers": workers, "tls": bool(ssl_certfile),
               "settings": settings.model_dump()}
    emit(started, as_json, lambda: _console(stderr=True).print(
        f"privgov serving {root} on {started['url']} ({workers} worker{'s' if workers > 1 else ''})", markup=False))
    logging = copy.deepcopy(LOGGING_CONFIG)
    logging["handlers"]["access"]["stream"] = "ext://sys.stderr"  # stdout holds only the --json document
    uvicorn.run("governance.server.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None, log_level=log_level, log_config=logging,
                loop=loop, http=http,
                server_header=False, proxy_headers=False)


def _run_data_dir(data_dir: Optional[Path]) -> Optional[str]:
    from privacy.errors import InputError

    if data_dir is None:
        return None
    if not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir}: no such directory")
    return str(data_dir.resolve())
