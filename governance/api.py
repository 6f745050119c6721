"""The documented Python API of privgov (also importable as ``privgov.api``).

Why a separate module: orchestrators (Airflow, Dagster, a notebook) call privgov
in process and need a small, stable, typed surface rather than the CLI's
internals. Every function here is a thin wrapper over the code path the CLI
uses - the same authentication, the one ``authorize`` path under the dataset's
bound policy, the same audit events - so an allow or deny through the API is
recorded exactly like one through ``privgov``. Nothing here bypasses a check.

Tokens: every call that touches data takes ``token``; when it is None the
``PRIVGOV_TOKEN`` environment variable is used (as the CLI does), so a
scheduler can inject it from its secrets store. Failures raise subclasses of
:class:`PrivgovError` whose ``exit_code`` is the CLI's (1 quality gate, 2 bad
input, 3 denied or over budget, 4 integrity failure).

Importing this module is cheap (no pandas, torch or SQLAlchemy until a function
runs), so DAG files that import it parse quickly.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from privacy.errors import (
    AccessDenied,
    BudgetExceeded,
    InputError,
    IntegrityFailure,
    PrivgovError,
    QualityGateFailed,
    WorkspaceError,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from governance.access.authorize import Identity
    from governance.evidence.chain import VerifyReport
    from governance.run.records import RunSummary
    from governance.workspace import Workspace

__all__ = [
    "AccessCheck", "ReleasedVersion", "RunSummary", "VerifyReport", "Workspace",
    "open_workspace", "run_pipeline", "read_version", "check_decision", "verify_audit", "verify_audit_file",
    "PrivgovError", "InputError", "AccessDenied", "BudgetExceeded", "IntegrityFailure", "QualityGateFailed",
    "WorkspaceError",
]

# Result types re-exported lazily: they live in modules that import pandas or SQLAlchemy.
_LAZY = {
    "RunSummary": "governance.run.records",
    "VerifyReport": "governance.evidence.chain",
    "Workspace": "governance.workspace",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _token(token: str | None) -> str | None:
    return token or os.environ.get("PRIVGOV_TOKEN")


@dataclass(frozen=True)
class AccessCheck:
    """The outcome of :func:`check_decision`: the bound policy's answer for one request.

    A denial carries the same words the CLI prints (it does not say whether the
    dataset exists or which rule denied); the reason is in the audit log."""

    principal: str
    action: str
    dataset: str
    purpose: str | None
    allowed: bool
    reason: str
    rule: str | None = None
    column_masks: dict[str, str] = field(default_factory=dict)
    row_filter: str | None = None
    epsilon_cap: float | None = None
    delta_cap: float | None = None


@dataclass(frozen=True)
class ReleasedVersion:
    """A stored version as the caller may see it (masks and row filter applied)."""

    dataset: str
    version: int
    kind: str
    row_id_column: str
    frame: "pd.DataFrame"


def open_workspace(path: str | Path | None = None) -> "Workspace":
    """Open an existing workspace: ``path``, else ``$PRIVGOV_WORKSPACE``, else ``./.privgov``.

    Raises :class:`WorkspaceError` when there is none (``privgov init`` creates one)."""
    from governance.workspace import Workspace, resolve_root

    return Workspace.open(resolve_root(path))


def run_pipeline(ws: "Workspace", pipeline: str | Path, token: str | None = None, *,
                 variables: dict[str, str] | None = None, resume: str | None = None,
                 progress: Callable[[str, str], None] | None = None) -> "RunSummary":
    """Run a declared pipeline end to end, as ``privgov run PIPELINE`` does.

    ``variables`` set ``${VAR}`` values used in the pipeline's paths (e.g.
    ``{"PRIVGOV_ADULT_DIR": "/data/adult"}``). ``resume`` finishes training run
    RUN from its last checkpoint under the budget it already reserved.
    ``progress(stage, state)`` is called with state ``start``, ``done`` or
    ``failed`` around each stage. The workspace is locked for the run. Raises
    :class:`AccessDenied`/:class:`BudgetExceeded` on refusal and
    :class:`QualityGateFailed` when the quality gate stops the run; the run's
    outcome is recorded and audited either way."""
    from governance.run.runner import resume_pipeline
    from governance.run.runner import run_pipeline as run
    from governance.run.spec import load_pipeline

    spec = load_pipeline(Path(pipeline), variables)
    with ws.lock():
        if resume:
            return resume_pipeline(ws, spec, _token(token), resume, progress)
        return run(ws, spec, _token(token), progress)


def read_version(ws: "Workspace", dataset: str, *, purpose: str, token: str | None = None,
                 version: int | None = None) -> ReleasedVersion:
    """Decrypt a stored version in memory, released as ``privgov dataset export`` releases it.

    Decided as ``read_masked`` (``read_quarantine`` for a quarantine version):
    the grant's masks and row filter are applied, a row filter that cannot be
    evaluated denies, and the decision and the read are audited under the
    token's principal. ``version`` None means the latest data version."""
    from governance.access.export import read_released

    released = read_released(ws, _token(token), "read_masked", dataset, version, purpose)
    return ReleasedVersion(dataset=dataset, version=released.version, kind=released.kind,
                           row_id_column=released.row_id_column, frame=released.frame)


def check_decision(ws: "Workspace", action: str, dataset: str, *, purpose: str | None,
                   token: str | None = None, version: int | None = None) -> AccessCheck:
    """Ask the dataset's bound policy whether the token's principal may do ``action`` for ``purpose``.

    Nothing is read or changed; the decision itself is audited like any other
    (allow or deny, under the authenticated identity, marked ``check_only``), so
    an insider cannot probe the policy silently. A bad, expired or missing token
    raises :class:`AccessDenied` (audited as unauthenticated); an unknown action
    raises :class:`InputError`."""
    from governance.access.authorize import authenticate
    from policies.schema import ACTIONS

    if action not in ACTIONS:
        raise InputError(f"action {action!r}: expected one of {', '.join(ACTIONS)}")
    identity = authenticate(ws, _token(token), action=action, resource=dataset, purpose=purpose)
    return check_for(ws, identity, action, dataset, purpose=purpose, version=version)


def check_for(ws: "Workspace", identity: "Identity", action: str, dataset: str, *, purpose: str | None,
              version: int | None = None) -> AccessCheck:
    """:func:`check_decision` for an identity already authenticated (the HTTP service's
    `current_identity`): decided and audited the same way, without hashing the token twice."""
    from governance.access.authorize import decide_for

    try:
        auth = decide_for(ws, identity, action, dataset, purpose, version=version, details={"check_only": True})
    except AccessDenied as exc:
        return AccessCheck(principal=identity.name, action=action, dataset=dataset, purpose=purpose,
                           allowed=False, reason=str(exc))
    ob = auth.decision.obligations
    return AccessCheck(principal=identity.name, action=action, dataset=dataset, purpose=purpose, allowed=True,
                       reason=auth.decision.reason, rule=auth.decision.rule, column_masks=dict(ob.column_masks),
                       row_filter=ob.row_filter, epsilon_cap=ob.epsilon_cap, delta_cap=ob.delta_cap)


def _trusted(trusted_key: str | bytes | None) -> bytes | None:
    from governance.evidence.verify import parse_trusted_key

    if trusted_key is None or isinstance(trusted_key, bytes):
        return trusted_key
    return parse_trusted_key(trusted_key)


def verify_audit(ws: "Workspace", *, trusted_key: str | bytes | None = None,
                 witness: str | Path | None = None) -> "VerifyReport":
    """Recompute the audit log's hash chain and check its signatures, as ``privgov audit verify``.

    ``trusted_key``: the Ed25519 public key you kept (32 raw bytes, 64 hex
    characters, or a file holding hex or PEM); ``witness``: your copy of the
    witness file. Returns the report (``ok``, ``problems``, ``events``,
    ``checkpoints``, ``notes``); it does not raise on a broken log, so check
    ``report.ok`` (the CLI exits 4)."""
    from governance.evidence.verify import verify_workspace

    return verify_workspace(ws, _trusted(trusted_key), Path(witness) if witness is not None else None)


def verify_audit_file(path: str | Path, *, trusted_key: str | bytes | None = None,
                      witness: str | Path | None = None) -> "VerifyReport":
    """Verify an exported audit extract (``privgov audit export``) on any machine."""
    from governance.evidence.verify import verify_file

    return verify_file(path, _trusted(trusted_key), Path(witness) if witness is not None else None)
