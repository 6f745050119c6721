"""PII scan results as the CLI shows them, and a starting de-identification spec from them.

Why here and not in the CLI: `pii scan` and `pii suggest` print the same facts and a
suggestion is a decision rule (what to do with each kind of finding) that deserves a
test of its own. Only names, types, kinds, confidences, shares and evidence leave;
never a cell value.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# What a starting spec does with each type of quasi-identifier the detectors name.
_GENERALIZE = {
    "zip": {"action": "generalize", "method": "zip_prefix", "digits": 3},
    "postcode": {"action": "generalize", "method": "zip_prefix", "digits": 3},
    "date_of_birth": {"action": "generalize", "method": "date_truncate", "to": "year"},
    "dob": {"action": "generalize", "method": "date_truncate", "to": "year"},
    "age": {"action": "generalize", "method": "age_band", "width": 10},
}


def finding_record(f: Any) -> dict[str, Any]:
    """One scan finding as a plain dict, with `kind` and `evidence` whatever detector version made it."""
    direct = bool(f.is_direct_identifier)
    return {
        "column": str(f.column),
        "pii_type": str(f.pii_type),
        "kind": str(getattr(f, "kind", None) or ("direct" if direct else "quasi")),
        "is_direct_identifier": direct,
        "confidence": round(float(f.confidence), 4),
        "share": round(float(getattr(f, "share", float("nan"))), 4),
        "n_sampled": int(getattr(f, "n_sampled", 0) or 0),
        "evidence": " ".join(str(getattr(f, "evidence", "") or "").split()),
    }


def assigned_row_ids(df: pd.DataFrame, row_id_column: str | None) -> bool:
    """True when the row id column is the 0..n-1 sequence ingest assigned, not data from the file.

    Why it matters: assigned ids say nothing about a person and are skipped by the scan;
    ids that came with the file (a case number used as row id) are scanned like any column."""
    if not row_id_column or row_id_column not in df.columns:
        return False
    ids = df[row_id_column]
    return bool(pd.api.types.is_integer_dtype(ids) and np.array_equal(ids.to_numpy(), np.arange(len(ids))))


def scan_records(df: pd.DataFrame, row_id_column: str | None = "row_id") -> list[dict[str, Any]]:
    """`privacy.deid.scan` over `df`, skipping the row id column when ingest assigned it."""
    from privacy.deid.scan import scan

    frame = df.drop(columns=[row_id_column]) if assigned_row_ids(df, row_id_column) else df
    return [finding_record(f) for f in scan(frame)]


def suggest_steps(findings: list[dict[str, Any]], threshold: float = 0.8) -> list[dict[str, Any]]:
    """A starting `deid.steps` list: pseudonymize direct identifiers, generalize known quasi-identifiers.

    Pseudonymize rather than drop: a keyed pseudonym keeps joins and counts per person
    working, and a reviewer who needs neither changes it to `drop` in one word."""
    steps: list[dict[str, Any]] = []
    for f in findings:
        if f["is_direct_identifier"] and f["confidence"] >= threshold:
            steps.append({"column": f["column"], "action": "pseudonymize"})
        elif not f["is_direct_identifier"] and f["pii_type"] in _GENERALIZE:
            steps.append({"column": f["column"], **_GENERALIZE[f["pii_type"]]})
    return steps
