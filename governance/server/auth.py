"""`current_identity`: the FastAPI dependency every route but `/healthz` takes.

Why a dependency and not code in each route: the order must be the CLI's for
every request - authenticate the `Authorization: Bearer` token through
`governance.access.authorize.authenticate` (a missing, malformed, unknown,
revoked or expired token is audited as `unauthenticated` there, exactly as the
CLI audits it, and answered 401), then spend one request from the token's rate
bucket (429). Failed authentications are limited per client address, before the
scrypt hash is computed, so guessing costs the guesser and not the server.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from governance.access.authorize import Identity, authenticate
from governance.server.ratelimit import RateLimiter, retry_after
from governance.workspace import Workspace
from privacy.errors import AccessDenied


def workspace(request: Request) -> Workspace:
    """The workspace this server serves (opened once, at start-up)."""
    ws: Workspace = request.app.state.workspace()
    return ws


# Documents the scheme in the OpenAPI schema; absent or non-Bearer credentials come back as None and
# are refused (and audited) below, not by FastAPI's own 403.
bearer_scheme = HTTPBearer(auto_error=False, description="An API token (`privgov token issue`).")


def _route_action(request: Request) -> str:
    """The audited action of a refused request: the route's stable name (`decide`, `download` ...)."""
    route = request.scope.get("route")
    return str(getattr(route, "name", None) or "http")


def _resource(request: Request) -> str | None:
    params = request.path_params
    value = params.get("name") or params.get("dataset")
    return str(value) if value is not None else None


def _client(request: Request) -> str:
    return f"addr:{request.client.host}" if request.client else "addr:unknown"


def current_identity(request: Request, ws: Annotated[Workspace, Depends(workspace)],
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> Identity:
    """The authenticated caller, or 401 (audited) / 429."""
    from governance.access.identity import token_id_of

    failures: RateLimiter = request.app.state.auth_failures
    wait = failures.wait_needed(_client(request))
    if wait:
        raise HTTPException(429, "too many failed authentications from this address; retry later",
                            headers={"Retry-After": retry_after(wait)})
    token = credentials.credentials.strip() if credentials is not None else None
    purpose = request.query_params.get("purpose")
    try:
        identity = authenticate(ws, token, action=_route_action(request), resource=_resource(request),
                                purpose=purpose)
    except AccessDenied as exc:
        failures.take(_client(request))
        message = str(exc) if token else "this endpoint needs an API token: send `Authorization: Bearer <token>`"
        raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"}) from None
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.take(f"token:{token_id_of(token or '')}")
    if wait:
        raise HTTPException(429, f"rate limit of {limiter.rate:g} requests/s per token exceeded; retry later",
                            headers={"Retry-After": retry_after(wait)})
    request.state.identity = identity
    return identity


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
WorkspaceDep = Annotated[Workspace, Depends(workspace)]
