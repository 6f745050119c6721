"""Validation engine registry and the `validate` entry point.

Why a registry: the pipeline picks an engine by name (`fast`, `gx` or `spark`); a new
backend (say, a SQL pushdown) registers itself without touching callers.
An engine takes (frame, suite, row id column) and returns one
`ExpectationResult` per suite expectation, in suite order.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from governance.errors import InputError
from governance.data.quality import fast
from governance.data.quality.result import ExpectationResult, ValidationResult
from governance.data.quality.suite import check_columns, expectation_columns, parse_suite

Engine = Callable[[pd.DataFrame, dict[str, Any], str], list[ExpectationResult]]
_ENGINES: dict[str, Engine] = {}


def register_engine(name: str, fn: Engine) -> None:
    """Make `fn` available as `validate(..., engine=name)`."""
    _ENGINES[name] = fn


def available_engines() -> list[str]:
    return sorted(_ENGINES)


def _gx_engine(df: pd.DataFrame, suite: dict[str, Any], row_id_column: str) -> list[ExpectationResult]:
    from governance.data.quality.gx_engine import run_gx

    return run_gx(df, list(enumerate(suite["expectations"])), row_id_column, suite["name"])


def _fast_engine(df: pd.DataFrame, suite: dict[str, Any], row_id_column: str) -> list[ExpectationResult]:
    ids = df[row_id_column].to_numpy()
    results: list[ExpectationResult] = []
    fallback: list[tuple[int, dict[str, Any]]] = []
    for i, exp in enumerate(suite["expectations"]):
        if not fast.supports(exp, df):
            fallback.append((i, exp))
            continue
        results.append(_fast_one(i, exp, df, ids))
    if fallback:
        from governance.data.quality.gx_engine import run_gx

        results.extend(run_gx(df, fallback, row_id_column, suite["name"]))
    return sorted(results, key=lambda r: r.index)


def _fast_one(index: int, exp: dict[str, Any], df: pd.DataFrame, ids: np.ndarray) -> ExpectationResult:
    """One expectation with the fast engine; if it cannot run, an `error` result, never a traceback.

    Why: suites GX refuses are stopped at load (`gx_rules`), so this is a last line of
    defence against an unforeseen data shape; the run still exits 2, naming the expectation."""
    try:
        return to_result(index, exp, fast.partial(exp, df, ids))
    except (TypeError, KeyError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        cols = expectation_columns(exp)
        return ExpectationResult(
            index=index, type=exp["type"], column=",".join(cols) if cols else None, success=False,
            element_count=int(len(df)), engine="fast", error=type(exc).__name__,
            severity=exp.get("severity", "critical"),
        )


def to_result(index: int, exp: dict[str, Any], p: fast.Partial, engine: str = "fast") -> ExpectationResult:
    """Turn a (merged) partial into the public result; ids sorted, as Python scalars."""
    cols = expectation_columns(exp)
    if exp["type"] == "expect_column_to_exist":
        cols = [exp["kwargs"].get("column")]
    ids = np.unique(p.unexpected_ids) if len(p.unexpected_ids) else p.unexpected_ids
    return ExpectationResult(
        index=index, type=exp["type"], column=",".join(map(str, cols)) if cols else None,
        success=fast.finish(exp, p), unexpected_count=int(len(p.unexpected_ids)),
        element_count=int(p.total), failing_row_ids=ids.tolist(), engine=engine,
        severity=exp.get("severity", "critical"),
    )


def _spark_engine(df: pd.DataFrame, suite: dict[str, Any], row_id_column: str) -> list[ExpectationResult]:
    from governance.data.spark.session import require_pyspark

    require_pyspark()  # one line with the install command, before anything else is imported
    from governance.data.spark.validate import spark_engine

    return spark_engine(df, suite, row_id_column)


register_engine("fast", _fast_engine)
register_engine("gx", _gx_engine)
register_engine("spark", _spark_engine)


def validate(
    df: pd.DataFrame, suite: dict[str, Any], *, row_id_column: str = "row_id", engine: str = "fast"
) -> ValidationResult:
    """Validate a frame against a GX 1.x suite; failing rows are reported by id only."""
    if engine not in _ENGINES:
        raise InputError(f"unknown validation engine {engine!r}; expected one of {available_engines()}")
    suite = parse_suite(suite, source=f"suite {suite.get('name', '?') if isinstance(suite, dict) else '?'}")
    if row_id_column not in df.columns:
        raise InputError(
            f"data has no row id column {row_id_column!r}; expected it (ingest assigns one)"
        )
    check_columns(suite, df.columns, source=f"suite {suite['name']}")
    results = _ENGINES[engine](df, suite, row_id_column)
    return ValidationResult(
        suite=suite["name"], success=all(r.status == "pass" for r in results), row_count=len(df),
        results=results, row_id_column=row_id_column,
    )
