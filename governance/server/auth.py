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

import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from governance.access.authorize import Identity, authenticate, shown
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


@dataclass(frozen=True)
class Claimed:
    """What a request says it is about, for the audit event of a refused authentication - the same
    fields the CLI records (`action`, `resource`, `purpose`). Cut to what the audit columns hold, so a
    long value cannot make the refusal itself fail to be recorded."""

    action: str
    resource: str | None
    purpose: str | None


def _text(value: object, limit: int) -> str | None:
    return shown(value, limit) if isinstance(value, str) and value else None


async def claimed(request: Request) -> Claimed:
    """The route's stable name (`decide`, `download` ...) or the body's `action`; the dataset from the
    path or the JSON body; the purpose from the query or the body. Reading the body here costs nothing:
    FastAPI has already read (and size-limited) it for a route that takes one."""
    route = request.scope.get("route")
    action = str(getattr(route, "name", None) or "http")
    params = request.path_params
    resource, purpose = params.get("name") or params.get("dataset"), request.query_params.get("purpose")
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
        try:
            doc = json.loads(await request.body() or b"null")
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            action = _text(doc.get("action"), 90) or action
            resource = resource or doc.get("dataset")
            purpose = purpose or doc.get("purpose")
    return Claimed(action=action, resource=_text(resource, 200), purpose=_text(purpose, 190))


def _client(request: Request) -> str:
    return f"addr:{request.client.host}" if request.client else "addr:unknown"


def _identify(request: Request, ws: Workspace, token: str | None, claim: Claimed) -> Identity:
    from governance.access.identity import token_id_of

    failures: RateLimiter = request.app.state.auth_failures
    wait = failures.wait_needed(_client(request))
    if wait:
        raise HTTPException(429, "too many failed authentications from this address; retry later",
                            headers={"Retry-After": retry_after(wait)})
    try:
        identity = authenticate(ws, token, action=claim.action, resource=claim.resource, purpose=claim.purpose)
    except AccessDenied as exc:
        failures.take(_client(request))
        message = str(exc) if token else "this endpoint needs an API token: send `Authorization: Bearer <token>`"
        raise HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"}) from None
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.take(f"token:{token_id_of(token or '')}")
    if wait:
        raise HTTPException(429, f"rate limit of {limiter.rate:g} requests/s per token exceeded; retry later",
                            headers={"Retry-After": retry_after(wait)})
    return identity


async def current_identity(request: Request, ws: Annotated[Workspace, Depends(workspace)],
                           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
                           ) -> Identity:
    """The authenticated caller, or 401 (audited) / 429. The scrypt check and the audit write run in
    the thread pool, never on the event loop."""
    token = credentials.credentials.strip() if credentials is not None else None
    claim = await claimed(request)
    identity = await run_in_threadpool(_identify, request, ws, token, claim)
    request.state.identity = identity
    return identity


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
WorkspaceDep = Annotated[Workspace, Depends(workspace)]
