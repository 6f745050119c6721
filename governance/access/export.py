"""Releasing a stored version to a person: `privgov dataset export` (and later the HTTP download).

Why here: this is where a decision meets the data. The action depends on what
is being read - quarantined rows hold values that failed validation before
de-identification, so reading them is its own action (`read_quarantine`) that a
policy must grant explicitly. Masks and row filters apply to every version
kind, and a row filter that cannot be evaluated on the stored columns denies
(fail closed). In a quarantine, the columns the run's de-identification dropped
or pseudonymized are dropped or hashed as well, whatever the grant's masks say.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from governance.access.authorize import Authorization, Identity, authenticate, decide_for
from governance.evidence.recorder import record_event
from privacy.errors import AccessDenied, InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from governance.workspace import Workspace


@dataclass(frozen=True)
class ExportSummary:
    principal: str
    dataset: str
    version: int
    kind: str
    rows: int
    columns: int
    out: Path


def _version_kind(ws: "Workspace", name: str, version: int | None) -> str:
    """The kind of the requested version; `data` when it does not exist (the decision then denies or
    the read reports the missing version - never before authentication)."""
    from governance.storage.store import Dataset, DatasetVersion

    if version is None:
        return "data"
    with ws.session() as s:
        kind = (s.query(DatasetVersion.kind).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                .filter(Dataset.name == name, DatasetVersion.version == version).scalar())
    return kind or "data"


def _identifier_columns(parent_steps: list[dict]) -> tuple[set[str], set[str]]:
    """(dropped, pseudonymized) columns of the de-identification that produced the parent version."""
    dropped, hashed = set(), set()
    for step in parent_steps or []:
        if step.get("stage") != "deid":
            continue
        if step.get("action") == "drop":
            dropped.add(str(step.get("column")))
        elif step.get("action") == "pseudonymize":
            hashed.add(str(step.get("column")))
    return dropped, hashed


def export_version(ws: "Workspace", token: str | None, name: str, version: int | None, purpose: str,
                   out: Path) -> ExportSummary:
    """Authenticate, decide (`read_masked` or `read_quarantine`), apply obligations, write `out`, audit."""
    from governance.storage.atomic_write import write_frame

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"--out {out}: expected a .csv or .parquet file name")
    identity = authenticate(ws, token, action="export", resource=name, purpose=purpose)
    released = release_for_export(ws, identity, name, version, purpose)
    masked = released.frame
    write_frame(masked, out)
    record_export(ws, identity, name, purpose, released)
    return ExportSummary(principal=identity.name, dataset=name, version=released.version, kind=released.kind,
                         rows=int(len(masked)), columns=int(masked.shape[1]), out=out)


def release_for_export(ws: "Workspace", identity: Identity, name: str, version: int | None,
                       purpose: str) -> "Released":
    """What `dataset export` (and the HTTP download) hands to an authenticated caller: decided as
    `read_masked` (`read_quarantine` for a quarantine), obligations applied; the decision is audited."""
    return _release(ws, identity, "read_masked", name, version, purpose, shown_action="export")


def record_export(ws: "Workspace", identity: Identity, name: str, purpose: str, released: "Released",
                  **details: str | int) -> None:
    """Audit that `released` left privgov (counts and masked column names only), and sign the head."""
    masked = released.frame
    masks = ",".join(sorted(released.auth.obligations.column_masks))[:128]
    with ws.session() as s:
        ws.audit.record(s, principal=identity.name, action="export", decision="info", resource=name,
                        version=released.version, purpose=purpose,
                        details={"rows": int(len(masked)), "columns": int(masked.shape[1]), "kind": released.kind,
                                 "masked_columns": masks, **details})
        ws.audit.checkpoint(s)


@dataclass(frozen=True)
class Released:
    """A stored version as one principal may see it, and the decision that allowed it."""

    auth: Authorization
    version: int
    kind: str
    frame: "pd.DataFrame"
    row_id_column: str


def _release(ws: "Workspace", identity: Identity, action: str, name: str, version: int | None, purpose: str,
             *, shown_action: str) -> Released:
    """Decide, decrypt, and apply everything a release owes: fail-closed row filter,
    the parent run's de-identification for a quarantine, the grant's masks.

    Why one function: `quality validate/suggest dataset:NAME@V` used to decrypt
    with the decision alone, so a quarantine came back with the names, SSNs and
    phone numbers that `dataset export` removes, and a grant's masks and row
    filter did not apply. Every path that hands a stored version to a caller
    goes through here."""
    from governance.access.obligations import apply_obligations, filter_problem
    from governance.storage import catalog
    from governance.storage.store import Dataset, DatasetVersion
    from privacy.deid import pseudonymize

    kind = _version_kind(ws, name, version)
    if kind == "quarantine":
        action = "read_quarantine"
    auth = decide_for(ws, identity, action, name, purpose, version=version, shown_action=shown_action)
    with ws.session() as s:
        ds = s.get(Dataset, auth.dataset.id)
        row = catalog.get_version(s, ds, version)
        if row.kind != kind:  # `--version` omitted: latest data version
            kind = row.kind
        df = catalog.read_version(ws, s, ds, row)
        parent = s.get(DatasetVersion, row.parent_id) if row.parent_id else None
        parent_steps = list(parent.steps_json or []) if parent is not None else []
        number, row_id = int(row.version), ds.row_id_column
    problem = filter_problem(auth.obligations.row_filter, df)
    if problem is not None:
        record_event(ws, principal=identity.name, action=shown_action, decision="deny", resource=name,
                     version=number, purpose=purpose, reason=f"fail closed: {problem}"[:500],
                     details={"for": action})
        raise AccessDenied(f"`{identity.name}` may not {shown_action} `{name}` v{number}: the grant's row filter "
                           f"cannot be evaluated on this version ({problem}); denied (fail closed)")
    key = ws.keyring.hmac_key(f"export:{name}")
    if kind == "quarantine":
        df = _deidentify_quarantine(df, parent_steps, key, pseudonymize)
    frame = apply_obligations(df, auth.obligations, key=key)
    return Released(auth=auth, version=number, kind=kind, frame=frame, row_id_column=row_id)


def _deidentify_quarantine(df: "pd.DataFrame", parent_steps: list[dict], key: bytes, pseudonymize) -> "pd.DataFrame":
    dropped, hashed = _identifier_columns(parent_steps)
    out = df.drop(columns=[c for c in df.columns if c in dropped])
    for c in hashed:
        if c in out.columns:
            out[c] = pseudonymize(out[c], key, domain=f"quarantine:{c}")
    return out


def read_released(ws: "Workspace", token: str | None, action: str, name: str, version: int | None,
                  purpose: str) -> Released:
    """A stored version read in process (`quality validate dataset:NAME@V`, the Python API), released
    exactly as `dataset export` would release it to this principal; the read is audited.

    Reading a quarantine version is `read_quarantine` whatever `action` was asked for."""
    identity = authenticate(ws, token, action=action, resource=name, purpose=purpose)
    released = _release(ws, identity, action, name, version, purpose, shown_action=action)
    df = released.frame
    record_event(ws, principal=identity.name, action="read", decision="info", resource=name,
                 version=released.version, purpose=purpose,
                 details={"rows": int(len(df)), "for": released.auth.action, "kind": released.kind})
    return released


def read_authorized(ws: "Workspace", token: str | None, action: str, name: str, version: int | None,
                    purpose: str) -> tuple["pd.DataFrame", str]:
    """:func:`read_released`'s frame and row-id column."""
    released = read_released(ws, token, action, name, version, purpose)
    return released.frame, released.row_id_column
