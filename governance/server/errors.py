"""The privgov error hierarchy as HTTP answers: one JSON shape, no traceback, no path.

Why one table: a client branches on the status (like a pipeline on the CLI's
exit code) and shows the message; an internal error must say only that it was
one, because a traceback or a server path tells an attacker how the service is
built. Every body is ``{"error": {"type": ..., "message": ...}}``.

| error | status |
|---|---|
| bad or missing token | 401 (``WWW-Authenticate: Bearer``) |
| `InputError` (bad argument, unknown version of an allowed dataset) | 400 |
| request body failing its schema | 422, the field named |
| `AccessDenied` (policy, role) - unknown and forbidden datasets alike | 403 |
| `BudgetExceeded` | 409 |
| `QualityGateFailed` | 422 |
| `IntegrityFailure` (broken chain, failed decryption tag) | 500 |
| `WorkspaceError` | 503 |
| too large a body / too many requests | 413 / 429 (``Retry-After``) |
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from privacy.errors import (
    AccessDenied, BudgetExceeded, InputError, IntegrityFailure, PrivgovError, QualityGateFailed, WorkspaceError,
)

log = logging.getLogger("privgov.server")

# Most specific first: the first class the error is an instance of decides.
STATUS: tuple[tuple[type[PrivgovError], int, str], ...] = (
    (BudgetExceeded, 409, "budget_exceeded"),
    (AccessDenied, 403, "access_denied"),
    (IntegrityFailure, 500, "integrity_failure"),
    (QualityGateFailed, 422, "quality_gate_failed"),
    (WorkspaceError, 503, "workspace_unavailable"),
    (InputError, 400, "bad_input"),
    (PrivgovError, 400, "bad_input"),
)
HTTP_TYPES = {401: "unauthenticated", 403: "access_denied", 404: "not_found", 405: "method_not_allowed",
              413: "body_too_large", 429: "rate_limited"}


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


def status_of(exc: PrivgovError) -> tuple[int, str]:
    for cls, status, kind in STATUS:
        if isinstance(exc, cls):
            return status, kind
    return 400, "bad_input"  # pragma: no cover - PrivgovError closes the table


async def _privgov_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PrivgovError)
    status, kind = status_of(exc)
    return JSONResponse(error_body(kind, str(exc)), status_code=status)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = HTTP_TYPES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(kind, str(exc.detail)), status_code=exc.status_code,
                        headers=dict(exc.headers or {}))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each field, without echoing the input (it may hold what the caller should not
    have sent, e.g. a token pasted into the wrong field) or linking pydantic's docs."""
    assert isinstance(exc, RequestValidationError)
    fields = []
    for err in exc.errors():
        where, *path = err.get("loc", ("body",)) or ("body",)
        fields.append({"field": ".".join(str(p) for p in path) or str(where), "in": str(where),
                       "message": str(err.get("msg", "invalid"))})
    first = fields[0] if fields else {"field": "body", "message": "invalid"}
    return JSONResponse(error_body("invalid_request", f"{first['field']}: {first['message']}", fields=fields),
                        status_code=422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged on the server (type only - messages may hold values), one line to the caller."""
    log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return JSONResponse(error_body("internal_error", "internal error; the server log has its type"), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PrivgovError, _privgov_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
