"""The one error hierarchy every layer raises.

Why here: `privacy/` is the lowest layer (nothing below it may be imported by
it), so the shared exception types live here and `governance.errors` re-exports
them. The CLI maps `exit_code` to the process exit status and prints the message
as one line, so every message must name the file/field and what was expected.
"""
from __future__ import annotations


class PrivgovError(Exception):
    """Base of every privgov error: one line naming the file or field and what was expected."""

    exit_code = 2


class InputError(PrivgovError):
    """Bad file, spec, argument or data shape (exit 2)."""

    exit_code = 2


class WorkspaceError(PrivgovError):
    """Workspace missing, locked by another run, or unreadable (exit 2)."""

    exit_code = 2


class AccessDenied(PrivgovError):
    """A policy denied the request, or the token is bad/expired/revoked (exit 3)."""

    exit_code = 3


class BudgetExceeded(PrivgovError):
    """The run would spend more privacy budget than the cap allows (exit 3)."""

    exit_code = 3


class IntegrityFailure(PrivgovError):
    """Tampering, a failed authentication tag, a broken hash chain (exit 4)."""

    exit_code = 4


class QualityGateFailed(PrivgovError):
    """A validation suite failed and the caller asked to gate on it (exit 1)."""

    exit_code = 1
