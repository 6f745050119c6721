"""The PII gate of a governed run: no direct identifier is stored in clear unless an admin allowed it.

Why a gate and not a warning: a pipeline author declares which columns to drop or
pseudonymize by name, and a column the author did not think of (a case number, names
under a neutral header) would otherwise be encrypted and stored as it came. Right
after ingest, before validation and before anything is stored or any budget is
reserved, the frame is scanned (`privacy.deid.scan`); a column detected as a direct
identifier with confidence at or above the bound policy's `pii.threshold` must be
transformed by the pipeline's `deid.steps` (drop, pseudonymize, generalize), or be
acknowledged with `pii: {COLUMN: {action: keep, reason}}`, which the bound policy must
allow (`pii: {allow_keep: true}`). Every refusal is audited as a deny (`pii_gate`,
`pii_keep`) with column, type, confidence and evidence; an allowed keep is audited
with its reason. Findings carry names, types, confidences and evidence, never values.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import pandas as pd

from governance.run.context import RunContext
from privacy.errors import AccessDenied, InputError

# deid actions that leave values in clear; every other action (drop, pseudonymize, generalize,
# redact ...) transforms the column
CLEAR_ACTIONS = ("keep", "suppress_rare")
_EVIDENCE_CHARS = 300
_AUDIT_STR = 128  # the audit log's limit on a detail string (ids and facts, never values)


@dataclass(frozen=True)
class PiiFinding:
    """One scanned column: what it looks like, how sure the detector is, and what the run does with it."""

    column: str
    pii_type: str
    kind: str  # direct | quasi | record_id | free_text (what the detectors report)
    direct: bool  # a direct identifier (names a person or a record on its own)
    confidence: float
    evidence: str
    action: str  # transformed | keep | none
    transform: str | None = None  # the deid action when transformed (drop, pseudonymize, generalize)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PiiGateResult:
    findings: list[PiiFinding]
    threshold: float

    def as_records(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.findings]


def transforms_by_column(steps: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The first transforming deid step per column (a later `keep` does not undo a drop)."""
    out: dict[str, str] = {}
    for step in steps:
        action = str(step.get("action"))
        if action not in CLEAR_ACTIONS:
            out.setdefault(str(step.get("column")), action)
    return out


def scan_findings(df: pd.DataFrame, *, row_id: str, steps: Iterable[dict[str, Any]],
                  keeps: Iterable[str], records: list[dict[str, Any]] | None = None) -> list[PiiFinding]:
    """Scan `df` and say, per detected column, whether the run transforms it, keeps it, or neither."""
    from governance.data.pii_report import scan_records

    transforms, kept = transforms_by_column(steps), set(keeps)
    findings = []
    for r in (scan_records(df, row_id) if records is None else records):
        column = r["column"]
        transform = transforms.get(column)
        action = "transformed" if transform else ("keep" if column in kept else "none")
        findings.append(PiiFinding(column=column, pii_type=r["pii_type"], kind=r["kind"],
                                   direct=r["is_direct_identifier"], confidence=r["confidence"],
                                   evidence=r["evidence"][:_EVIDENCE_CHARS], action=action, transform=transform))
    return findings


def is_blocking(f: PiiFinding, threshold: float) -> bool:
    """A direct identifier at or above the threshold that the run would store as it came."""
    return f.direct and f.confidence >= threshold and f.action == "none"


def _facts(f: PiiFinding) -> dict[str, Any]:
    """What an audit event says about a finding: flat, short strings (the audit log's rules)."""
    return {"column": f.column[:_AUDIT_STR], "pii_type": f.pii_type[:_AUDIT_STR], "kind": f.kind[:_AUDIT_STR],
            "confidence": f.confidence, "evidence": f.evidence[:_AUDIT_STR]}


def _shown(name: str, limit: int = 80) -> str:
    """A column name fit for a one-line message: control characters escaped, long names cut."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ways_forward(column: str) -> str:
    return (f"add a transform in the pipeline's deid.steps (e.g. `- {{column: {column}, action: pseudonymize}}` "
            f"or `action: drop`), or acknowledge it with `pii: {{{column}: {{action: keep, reason: \"...\"}}}}`, "
            "which the bound policy must allow with `pii: {allow_keep: true}`")


def _check_keeps(ctx: RunContext, df: pd.DataFrame, by_column: dict[str, PiiFinding]) -> None:
    """Acknowledged keeps: the columns must exist, and the bound policy must allow keeping."""
    spec = ctx.spec
    missing = sorted(c for c in spec.pii if c not in df.columns)
    if missing:
        raise InputError(f"pipeline `{spec.name}`: pii: column `{_shown(missing[0])}` is acknowledged with action keep "
                         "but is not a column of the data; expected a column name of the source")
    if spec.pii and not ctx.policy.pii.allow_keep:
        column = sorted(spec.pii)[0]
        found = by_column.get(column)
        ctx.record("pii_keep", decision="deny", purpose=spec.ingest_purpose,
                   reason="the bound policy does not allow keeping detected identifiers (pii.allow_keep)",
                   details={"run_uid": ctx.run_uid, "column": column[:_AUDIT_STR], "keeps": len(spec.pii),
                            **({"pii_type": found.pii_type[:_AUDIT_STR], "confidence": found.confidence}
                               if found else {"detected": False})})
        raise AccessDenied(f"pipeline `{spec.name}`: pii: column `{_shown(column)}` is acknowledged with action keep, but "
                           f"the policy bound to `{ctx.dataset.name}` does not allow keeping identifiers in clear "
                           "(`pii: {allow_keep: true}`, an admin's decision); transform the column in deid.steps "
                           "instead")


def run_gate(ctx: RunContext, df: pd.DataFrame, sink: list[dict[str, Any]] | None = None,
             records: list[dict[str, Any]] | None = None) -> PiiGateResult:
    """Scan the ingested frame; refuse (audited, exit 3) before anything is stored. See the module docstring.

    `sink` receives the findings before any refusal, so a refused run still reports them. A streaming
    run passes the scan's `records` (governance/data/pii_stream.py) and a frame with the columns only."""
    spec, threshold = ctx.spec, float(ctx.policy.pii.threshold)
    findings = scan_findings(df, row_id=spec.row_id, steps=spec.deid.steps, keeps=spec.pii, records=records)
    if sink is not None:
        sink.extend(f.to_dict() for f in findings)
    by_column = {f.column: f for f in findings}
    _check_keeps(ctx, df, by_column)
    blocking = [f for f in findings if is_blocking(f, threshold)]
    for f in blocking:
        ctx.record("pii_gate", decision="deny", purpose=spec.ingest_purpose,
                   reason=f"direct identifier `{f.column}` ({f.pii_type}) would be stored untransformed"[:500],
                   details={"run_uid": ctx.run_uid, "threshold": threshold, **_facts(f)})
    if blocking:
        f = blocking[0]
        more = "" if len(blocking) == 1 else (
            f" ({len(blocking) - 1} more: {', '.join(_shown(b.column, 40) for b in blocking[1:6])})")
        evidence = f"; evidence: {f.evidence}" if f.evidence else ""
        raise AccessDenied(
            f"PII gate: column `{_shown(f.column)}` looks like {f.pii_type} (direct identifier, confidence "
            f"{f.confidence:.2f} >= threshold {threshold:g}{evidence}) and would be stored untransformed{more}; "
            + _ways_forward(_shown(f.column)))
    for column, ack in sorted(spec.pii.items()):
        found = by_column.get(column)
        ctx.record("pii_keep", decision="allow", purpose=spec.ingest_purpose, reason=ack.reason[:500],
                   details={"run_uid": ctx.run_uid, **(_facts(found) if found else
                                                        {"column": column[:_AUDIT_STR], "detected": False})})
    ctx.record("pii_scan", purpose=spec.ingest_purpose,
               details={"run_uid": ctx.run_uid, "threshold": threshold, "columns_scanned": int(df.shape[1]),
                        "findings": len(findings), "direct": sum(f.direct for f in findings),
                        "transformed": sum(f.action == "transformed" for f in findings),
                        "kept": sum(f.action == "keep" for f in findings)})
    return PiiGateResult(findings=findings, threshold=threshold)
