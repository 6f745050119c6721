"""Our validation result as a GX 1.x ``ExpectationSuiteValidationResult`` JSON document.

Why: teams already read Great Expectations' Data Docs and feed GX results into
their tooling; a privgov result must open there (``expectationSuiteValidationResultSchema
.load(doc)``, then ``build_data_docs``) with its severities, and with expectations that
could not run shown as GX shows them (``exception_info.raised_exception``), never as a
pass or a fail. The document is written from our own result, so it holds what ours
holds: counts, shares and row ids (``unexpected_index_list`` on the row-id column),
never a data value (no ``unexpected_list`` nor ``partial_unexpected_list``). The
expectation kwargs come from the suite, a public declaration. Plain JSON: no GX import.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from governance.data.quality.result import ExpectationResult, ValidationResult
from governance.errors import InputError

GX_FORMAT_VERSION = "1.x"  # ExpectationSuiteValidationResult as GX 1.x serialises it


def to_gx_dict(result: ValidationResult, suite: dict[str, Any], *, data_asset_name: str = "data",
               run_name: str = "privgov", run_time: datetime | None = None) -> dict[str, Any]:
    """The GX document for ``result``, obtained by validating ``suite`` (its parsed form)."""
    exps = suite["expectations"]
    if len(exps) != len(result.results) or any(exps[r.index]["type"] != r.type for r in result.results):
        raise InputError(f"suite {suite.get('name')!r}: result does not come from this suite; "
                         "expected the suite that was validated")
    when = (run_time or datetime.now(timezone.utc)).astimezone(timezone.utc)
    evaluated = len(result.results)
    ok = sum(r.status == "pass" for r in result.results)
    return {
        "success": result.status == "pass",
        "suite_name": result.suite,
        "suite_parameters": {},
        "results": [_one(r, exps[r.index], result.row_id_column) for r in result.results],
        "statistics": {
            "evaluated_expectations": evaluated, "successful_expectations": ok,
            "unsuccessful_expectations": evaluated - ok,
            "success_percent": (100.0 * ok / evaluated) if evaluated else None,
        },
        "meta": {
            "great_expectations_version": _gx_version(),
            "run_id": {"run_name": run_name, "run_time": when.isoformat()},
            "validation_time": when.strftime("%Y%m%dT%H%M%S.%fZ"),
            "batch_spec": {"data_asset_name": data_asset_name},
            "active_batch_definition": {"datasource_name": "privgov", "data_connector_name": "privgov",
                                        "data_asset_name": data_asset_name, "batch_identifiers": {}},
            "privgov": {"status": result.status, "row_count": result.row_count,
                        "row_id_column": result.row_id_column,
                        "engines": sorted({r.engine for r in result.results})},
        },
    }


def _one(r: ExpectationResult, exp: dict[str, Any], row_id_column: str) -> dict[str, Any]:
    config: dict[str, Any] = {"type": r.type, "kwargs": dict(exp["kwargs"]), "meta": dict(exp.get("meta") or {}),
                              "severity": r.severity}
    if r.status == "error":
        # GX's own shape for an expectation that raised: success false, empty result.
        return {"success": False, "expectation_config": config, "result": {}, "meta": {},
                "exception_info": {"raised_exception": True,
                                   "exception_message": f"could not run ({r.error})",
                                   "exception_traceback": f"{r.error} (privgov {r.engine} engine)"}}
    res: dict[str, Any] = {"element_count": r.element_count}
    if r.unexpected_count or r.failing_row_ids or r.type.startswith(("expect_column_values_", "expect_column_value_",
                                                                     "expect_compound_")):
        res.update(unexpected_count=r.unexpected_count,
                   unexpected_percent=(100.0 * r.unexpected_count / r.element_count) if r.element_count else 0.0,
                   unexpected_index_column_names=[row_id_column],
                   unexpected_index_list=[{row_id_column: i} for i in r.failing_row_ids])
    return {"success": r.success, "expectation_config": config, "result": res, "meta": {"privgov_engine": r.engine},
            "exception_info": {"raised_exception": False, "exception_message": None, "exception_traceback": None}}


def write_gx_json(path: Path, result: ValidationResult, suite: dict[str, Any], **kwargs: Any) -> None:
    """Write :func:`to_gx_dict` atomically (row ids and counts only, like our own JSON)."""
    from governance.storage.atomic_write import write_text

    doc = to_gx_dict(result, suite, **kwargs)
    try:
        write_text(Path(path), json.dumps(doc, indent=2, default=_plain) + "\n")
    except OSError as exc:
        raise InputError(f"{path}: cannot write the GX result ({exc.strerror or type(exc).__name__})") from None


def _gx_version() -> str:
    """Installed GX version from package metadata (no slow import of GX itself)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("great_expectations")
    except PackageNotFoundError:
        return GX_FORMAT_VERSION


def _plain(obj: Any) -> Any:
    return obj.item() if hasattr(obj, "item") else str(obj)
