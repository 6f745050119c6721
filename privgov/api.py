"""The documented Python API (``docs/api.md``); the same objects as :mod:`governance.api`.

Why a second name: the distribution is called ``privgov`` and that is what users
type; the implementation stays in ``governance`` beside the code paths it wraps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from governance.api import (
    AccessCheck,
    AccessDenied,
    BudgetExceeded,
    InputError,
    IntegrityFailure,
    PrivgovError,
    QualityGateFailed,
    ReleasedVersion,
    WorkspaceError,
    check_decision,
    open_workspace,
    read_version,
    run_pipeline,
    verify_audit,
    verify_audit_file,
)
from governance.api import __all__ as __all__
from governance.api import __getattr__ as __getattr__  # RunSummary, VerifyReport, Workspace, loaded on use

if TYPE_CHECKING:  # pragma: no cover
    from governance.api import RunSummary, VerifyReport, Workspace
