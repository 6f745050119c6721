"""The `gx` engine: run a suite with Great Expectations 1.x itself.

Why: GX is the reference semantics and covers every expectation type; the fast
engine falls back to it for anything it does not vectorise. GX is imported
here, inside the function, because importing it costs 4-6 s and `privgov
--help` must stay fast. Results are requested as row ids only
(`unexpected_index_column_names=[row_id]`, `exclude_unexpected_values=True`,
`partial_unexpected_count=0`): GX's default would copy failing values — PII —
into the result.
"""
from __future__ import annotations

import uuid
from typing import Any

import pandas as pd

from governance.errors import InputError
from governance.data.quality.gx_import import import_gx
from governance.data.quality.result import ExpectationResult
from governance.data.quality.suite import expectation_columns


def result_format(row_id_column: str) -> dict[str, Any]:
    return {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [row_id_column],
        "exclude_unexpected_values": True,
        "partial_unexpected_count": 0,
        "return_unexpected_index_query": False,
    }


def _context() -> Any:
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # cosmetic only
        pass
    return ctx


def run_gx(
    df: Any, expectations: list[tuple[int, dict[str, Any]]], row_id_column: str, suite_name: str,
    *, source: str = "pandas", rows: int | None = None,
) -> list[ExpectationResult]:
    """Validate `df` against (suite index, expectation) pairs; results keep the suite index.

    `source` is GX's execution engine: `pandas` for a pandas frame, `spark` for a
    Spark DataFrame (GX's SparkDFExecutionEngine; `rows` saves a count job)."""
    if not expectations:
        return []
    gx = import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    ctx = _context()
    tag = uuid.uuid4().hex[:8]
    sources = ctx.data_sources
    add_source = sources.add_spark if source == "spark" else sources.add_pandas
    bd = (
        add_source(f"privgov_{tag}")
        .add_dataframe_asset(f"frame_{tag}")
        .add_batch_definition_whole_dataframe(f"whole_{tag}")
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"{suite_name}_{tag}"))
    by_id: dict[str, tuple[int, dict[str, Any]]] = {}
    for idx, exp in expectations:
        try:
            obj = ExpectationConfiguration(type=exp["type"], kwargs=dict(exp["kwargs"]),
                                        severity=exp.get("severity", "critical")).to_domain_obj()
        except Exception as exc:
            raise InputError(
                f"suite {suite_name}: expectation {idx} ({exp['type']}) has invalid kwargs "
                f"({type(exc).__name__}); expected the GX 1.x arguments for this type"
            ) from None
        added = suite.add_expectation(obj)
        by_id[str(added.id)] = (idx, exp)
    vd = gx.ValidationDefinition(name=f"vd_{tag}", data=bd, suite=suite)
    res = vd.run(batch_parameters={"dataframe": df}, result_format=result_format(row_id_column))
    engine = "gx-spark" if source == "spark" else "gx"
    out: list[ExpectationResult] = []
    for er in res.results:
        idx, exp = by_id[str(er.expectation_config.id)]
        r = er.result or {}
        ids: list[Any] = []
        for entry in r.get("unexpected_index_list") or []:
            val = entry.get(row_id_column) if isinstance(entry, dict) else entry
            if isinstance(val, (list, tuple)):
                ids.extend(_py(v) for v in val)
            elif val is not None:
                ids.append(_py(val))
        error = raised_exception(er.exception_info)
        cols = expectation_columns(exp)
        out.append(ExpectationResult(
            index=idx, type=exp["type"], column=",".join(cols) if cols else None,
            success=bool(er.success) and error is None, unexpected_count=int(r.get("unexpected_count") or 0),
            element_count=int(r.get("element_count") or (len(df) if rows is None else rows)),
            failing_row_ids=sorted(set(ids), key=_key), engine=engine, error=error,
            severity=exp.get("severity", "critical"),
        ))
    return sorted(out, key=lambda x: x.index)


def raised_exception(exc_info: Any) -> str | None:
    """The exception (class name only) GX caught for one expectation, or None if it ran.

    Why both shapes: GX 1.x stores ``{"raised_exception", "exception_message", ...}``
    at the top level when the expectation itself raised, but one such dict *per
    metric* (keyed by the metric's id) when a metric failed to resolve, and then
    reports ``success: false`` with an empty result: reading only the top level
    turned "could not run" into "failed, 0 failing rows"."""
    if not isinstance(exc_info, dict) or not exc_info:
        return None
    if "raised_exception" in exc_info:
        return _exc_name(exc_info) if exc_info.get("raised_exception") else None
    for info in exc_info.values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return _exc_name(info)
    return None


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _key(v: Any) -> Any:
    return (0, v) if isinstance(v, (int, float)) else (1, str(v))


def _exc_name(info: dict) -> str:
    """The exception's class, from the traceback's last line; never its message.

    Why: messages can quote data values (``could not convert 'Zelda' to float``)."""
    tb = str(info.get("exception_traceback") or "").strip().splitlines()
    last = tb[-1] if tb else ""
    name = last.split(":", 1)[0].rsplit(".", 1)[-1].strip() if ":" in last else ""
    return name[:60] if name.isidentifier() else "exception"
