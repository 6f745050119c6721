"""Report sections about the data: datasets and versions, per-expectation quality, de-identification, PII findings.

Why from metadata only: the report never decrypts a version, so it cannot leak a value.
Everything here is a column name, a type, a count, a share, a hash or a declared
parameter, as stored by the run that produced the version.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from governance.evidence.report.scope import Scope
from governance.storage.store import Dataset, DatasetVersion, ValidationRecord

# Parameters of a de-identification step that describe its method (declared), as opposed to counts.
_DEID_COUNTS = ("rows", "nulls_before", "nulls", "changed", "distinct_before", "distinct_after", "became_null",
                "rows_suppressed")
_DEID_KEYS = ("stage", "step", "column", "action", "method") + _DEID_COUNTS


@dataclass(frozen=True)
class DatasetRow:
    name: str
    privacy_unit: str
    tags: str
    versions: int
    lineage_id: str
    policy_hash: str | None


@dataclass(frozen=True)
class VersionRow:
    dataset: str
    version: int
    kind: str
    rows: int
    units: int | None
    content_hash: str
    data_key_id: int | None
    validation: str
    created: dt.datetime
    erased: dt.datetime | None
    parent_version: int | None


@dataclass(frozen=True)
class ExpectationRow:
    index: int
    type: str
    column: str | None
    severity: str | None
    outcome: str  # pass | fail | error
    failing: int
    evaluated: int
    error: str | None


@dataclass(frozen=True)
class QualityRecord:
    """One validation of one version (or of the raw frame before a version existed)."""

    id: int
    dataset: str
    version: int | None
    stage: str
    suite: str
    suite_hash: str | None
    success: bool
    failing_rows: int
    created: dt.datetime
    expectations: list[ExpectationRow] = field(default_factory=list)


@dataclass(frozen=True)
class DeidRow:
    dataset: str
    version: int
    column: str
    method: str
    parameters: str
    counts: str


@dataclass(frozen=True)
class CleaningRow:
    dataset: str
    version: int
    step: str
    parameters: str
    rows_in: Any
    rows_out: Any
    values_changed: Any


@dataclass(frozen=True)
class PiiRow:
    dataset: str
    version: int
    column: str
    pii_type: str
    kind: str
    confidence: str
    evidence: str
    action: str


def datasets_in(session: Session, scope: Scope) -> list[Dataset]:
    return [d for d in session.query(Dataset).order_by(Dataset.name) if scope.has_dataset(d.name)]


def versions_in(session: Session, scope: Scope) -> list[tuple[Dataset, DatasetVersion]]:
    """Every version of the datasets in scope created since `scope.since`, oldest first."""
    out: list[tuple[Dataset, DatasetVersion]] = []
    for ds in datasets_in(session, scope):
        rows = (session.query(DatasetVersion).filter(DatasetVersion.dataset_id == ds.id)
                .order_by(DatasetVersion.version).all())
        out.extend((ds, v) for v in rows if scope.is_after(v.created_at))
    return out


def dataset_rows(session: Session, scope: Scope) -> list[DatasetRow]:
    """Each dataset in scope: who epsilon protects there, its tags, its lineage and the policy bound to it."""
    return [DatasetRow(name=ds.name, privacy_unit=ds.privacy_unit or "row", tags=", ".join(ds.tags or []),
                       versions=session.query(DatasetVersion).filter(DatasetVersion.dataset_id == ds.id).count(),
                       lineage_id=ds.lineage_id, policy_hash=ds.policy_hash)
            for ds in datasets_in(session, scope)]


def version_rows(session: Session, scope: Scope) -> list[VersionRow]:
    pairs = versions_in(session, scope)
    number = {v.id: v.version for _, v in pairs}
    for v in session.query(DatasetVersion).filter(DatasetVersion.id.in_([v.parent_id for _, v in pairs
                                                                          if v.parent_id])):
        number[v.id] = v.version
    return [VersionRow(dataset=ds.name, version=v.version, kind=v.kind, rows=int(v.row_count), units=v.unit_count,
                       content_hash=v.content_hash, data_key_id=v.data_key_id, validation=v.validation_status,
                       created=v.created_at, erased=v.erased_at,
                       parent_version=number.get(v.parent_id) if v.parent_id else None)
            for ds, v in pairs]


def quality_records(session: Session, scope: Scope) -> list[QualityRecord]:
    """Per-expectation results of every validation in scope, with the suite's hash and severity when stored."""
    numbers = dict(session.query(DatasetVersion.id, DatasetVersion.version).all())
    out = []
    for rec in session.query(ValidationRecord).order_by(ValidationRecord.id):
        if not (scope.has_dataset(rec.dataset_name) and scope.is_after(rec.created_at)):
            continue
        res = rec.result_json or {}
        exps: list[ExpectationRow] = []
        for r in res.get("results") or []:
            if not isinstance(r, dict):
                continue
            outcome = "error" if r.get("error") else ("pass" if r.get("success") else "fail")
            exps.append(ExpectationRow(
                index=int(r.get("index", len(exps))), type=str(r.get("type", "")), column=r.get("column"),
                severity=_severity(r), outcome=outcome, failing=int(r.get("unexpected_count") or 0),
                evaluated=int(r.get("element_count") or 0), error=r.get("error")))
        out.append(QualityRecord(
            id=rec.id, dataset=rec.dataset_name, version=numbers.get(rec.version_id) if rec.version_id else None,
            stage=rec.stage, suite=rec.suite_name, suite_hash=res.get("suite_sha256") or res.get("suite_hash"),
            success=bool(rec.success), failing_rows=int(rec.failing_rows), created=rec.created_at,
            expectations=exps))
    return out


def _severity(result: dict[str, Any]) -> str | None:
    sev = result.get("severity")
    if sev is None:
        sev = (result.get("meta") or {}).get("severity") if isinstance(result.get("meta"), dict) else None
    return None if sev is None else str(sev)


def method_name(step: dict[str, Any]) -> str:
    """The de-identification method in words: `generalize: age_band`, `pseudonymize (HMAC-SHA256)`, `drop`."""
    action = str(step.get("action") or "unknown")
    if action == "generalize" and step.get("method"):
        return f"generalize: {step['method']}"
    if action == "pseudonymize":
        return "pseudonymize (HMAC-SHA256)"
    if action == "suppress_rows":
        return f"suppress rows below k={step.get('k')}"
    return action


def _pairs(d: dict[str, Any], keys: tuple[str, ...] | None, skip: tuple[str, ...] = ()) -> str:
    items = [(k, v) for k, v in d.items() if (keys is None or k in keys) and k not in skip and v is not None]
    return ", ".join(f"{k}={_short(v)}" for k, v in items)


def _short(v: Any, inner: bool = False) -> str:
    """A declared parameter in words; strings inside lists and maps are quoted so `""` stays visible."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x, True) for x in v[:12]) + (", …" if len(v) > 12 else "") + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x, True)}" for k, x in list(v.items())[:12]) + "}"
    return json.dumps(v, ensure_ascii=False) if inner and isinstance(v, str) else str(v)


def deid_rows(session: Session, scope: Scope) -> list[DeidRow]:
    """Per column of each stored data version: the declared method, its parameters and what it changed (counts)."""
    out = []
    for ds, v in versions_in(session, scope):
        for st in v.steps_json or []:
            if not isinstance(st, dict) or st.get("stage") != "deid":
                continue
            out.append(DeidRow(dataset=ds.name, version=v.version, column=str(st.get("column") or "(all rows)"),
                               method=method_name(st), parameters=_pairs(st, None, _DEID_KEYS),
                               counts=_pairs(st, _DEID_COUNTS)))
    return out


def cleaning_rows(session: Session, scope: Scope) -> list[CleaningRow]:
    """The declared cleaning steps of each data version, by name, with row and value counts (never row ids)."""
    out = []
    for ds, v in versions_in(session, scope):
        for st in v.steps_json or []:
            if not isinstance(st, dict) or st.get("stage") == "deid" or not isinstance(st.get("step"), str):
                continue
            out.append(CleaningRow(dataset=ds.name, version=v.version, step=st["step"],
                                   parameters=_pairs(st.get("params") or {}, None),
                                   rows_in=st.get("rows_in"), rows_out=st.get("rows_out"),
                                   values_changed=st.get("values_changed")))
    return out


def pii_rows(session: Session, scope: Scope) -> list[PiiRow]:
    """PII findings a run stored in the version's metadata (`pii_findings`), when there are any."""
    out = []
    for ds, v in versions_in(session, scope):
        for f in (v.meta_json or {}).get("pii_findings") or []:
            if not isinstance(f, dict):
                continue
            conf = f.get("confidence")
            out.append(PiiRow(dataset=ds.name, version=v.version, column=str(f.get("column", "")),
                              pii_type=str(f.get("pii_type", "")), kind=str(f.get("kind", "")),
                              confidence=f"{conf:.2f}" if isinstance(conf, (int, float)) else str(conf or ""),
                              evidence=_short(f.get("evidence", "")), action=str(f.get("action", ""))))
    return out
