"""The application factory: `create_app(ws_root, settings)` and the uvicorn factory `app_from_env`.

Why a factory: tests, `privgov serve` and each uvicorn worker build the same
app from the same two inputs; nothing global is shared between two apps. The
workspace is opened at start-up (a missing or outdated one stops the server
before it accepts a request) and not at construction, so the OpenAPI schema can
be generated without one (`python -m governance.server.openapi`).

Only `/healthz` answers without a token; the interactive docs and the live
`/openapi.json` are off (the schema is checked in at docs/openapi.json).
"""
from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from governance.server import errors
from governance.server.ratelimit import RateLimiter
from governance.server.routes import ROUTERS, runs
from governance.server.settings import WORKSPACE_ENV, ServerSettings
from governance.workspace import Workspace

__all__ = ["API_VERSION", "ServerSettings", "app_from_env", "create_app"]

API_VERSION = "1.0.0"
DESCRIPTION = ("The privgov HTTP service: the CLI's decisions, releases and evidence over HTTP. Every "
               "endpoint but `/healthz` needs `Authorization: Bearer <API token>`; every allow and deny is "
               "audited under the token's principal, exactly as the CLI audits it.")


class _WorkspaceHolder:
    """Opens the workspace once, on first need (start-up), from any thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ws: Workspace | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Workspace:
        if self._ws is None:
            with self._lock:
                if self._ws is None:
                    self._ws = Workspace.open(self.root)
        return self._ws

    def close(self) -> None:
        if self._ws is not None:
            self._ws.engine.dispose()


def create_app(ws_root: Path, settings: ServerSettings) -> FastAPI:
    """The service for the workspace at `ws_root` under `settings`' limits."""
    holder = _WorkspaceHolder(Path(settings.data_dir) if settings.data_dir else Path(ws_root))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder()  # fail at start-up, not on the first request
        runs.start_jobs(app, holder.root, settings.run_data_dir)  # marks a dead server's jobs interrupted
        yield
        runs.stop_jobs(app)
        holder.close()

    app = FastAPI(title="privgov", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None, max_body_size=settings.max_body_bytes)
    app.state.settings = settings
    app.state.workspace = holder
    app.state.rate_limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
    app.state.auth_failures = RateLimiter(settings.auth_failures_per_minute / 60.0,
                                          max(1, int(settings.auth_failures_per_minute)))
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """What each uvicorn worker builds (`privgov serve` sets the two variables)."""
    root = os.environ.get(WORKSPACE_ENV)
    if not root:
        from privacy.errors import WorkspaceError

        raise WorkspaceError(f"${WORKSPACE_ENV}: not set; start the server with `privgov serve`")
    return create_app(Path(root), ServerSettings.from_env())
