"""The detector catalogue shown by ``privgov pii detectors``: each registered detector with the
precision and recall the benchmark measured for its types (``benchmarks/results/pii.json``).

Why read the benchmark file: a precision figure printed without a measurement behind it is a
promise nobody checked. Detectors the benchmark did not measure say so.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from privacy.errors import InputError

__all__ = ["detector_table"]


def _measured(results: Path | None) -> tuple[dict[str, Any], str | None]:
    if results is None or not results.exists():
        return {}, None
    try:
        data = json.loads(results.read_text())
        cols = data["columns"]["ours"]
        code = data.get("machine", {}).get("code_version")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{results}: not a pii benchmark result ({type(exc).__name__}); "
                         "rerun `python benchmarks/pii.py`") from None
    return cols, code


def detector_table(results: Path | None) -> dict[str, Any]:
    """{"source": path or None, "code_version": ..., "detectors": [{name, types, kind, description,
    precision, recall, support}]} with precision/recall None when not measured."""
    from privacy.deid.detect import registered

    cols, code = _measured(results)
    rows = []
    for det in registered():
        types = list(det.pii_types)
        m = [cols[t] for t in types if isinstance(cols.get(t), dict) and cols[t].get("support")]
        rows.append({
            "name": det.name, "types": types, "kind": det.kind, "description": det.description,
            "precision": m[0].get("precision") if len(m) == 1 else None,
            "recall": m[0].get("recall") if len(m) == 1 else None,
            "support": m[0].get("support") if len(m) == 1 else None,
        })
    return {"source": str(results) if cols else None, "code_version": code, "detectors": rows}
