"""Validate a Spark DataFrame with Great Expectations' Spark execution engine.

Why GX's own Spark engine rather than collecting to pandas: the data stays
distributed; GX turns each expectation into Spark column expressions. Results
are asked for as row ids only, exactly as on pandas (`unexpected_index_column_names`
on the row-id column, `exclude_unexpected_values`, `partial_unexpected_count=0`,
no `unexpected_index_query` - on Spark that query is a filter expression that
quotes the suite's value sets and regexes and is never copied into a result).
The suite model, refusals and result types are the pandas path's.

If GX reports failing rows for an expectation but gives no row ids for it (a
type whose Spark metric has no index support), the expectation is reported as
`error` (`RowIdsUnavailable`): quarantine works by row id, so "n rows failed,
we cannot say which" must stop a run, never pass as a clean result.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.data.quality.result import ExpectationResult, ValidationResult
from governance.data.quality.suite import check_columns, parse_suite
from governance.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pyspark.sql import DataFrame

NO_IDS = "RowIdsUnavailable"


def validate_spark(sdf: "DataFrame", suite: dict[str, Any], *, row_id_column: str = "row_id") -> ValidationResult:
    """The Spark twin of :func:`governance.data.quality.validate` (same suite, same result)."""
    from governance.data.quality.gx_engine import run_gx

    suite = parse_suite(suite, source=f"suite {suite.get('name', '?') if isinstance(suite, dict) else '?'}")
    if row_id_column not in sdf.columns:
        raise InputError(f"data has no row id column {row_id_column!r}; expected it (ingest assigns one)")
    check_columns(suite, sdf.columns, source=f"suite {suite['name']}")
    rows = int(sdf.count())
    results = run_gx(sdf, list(enumerate(suite["expectations"])), row_id_column, suite["name"],
                     source="spark", rows=rows)
    results = [_require_ids(r) for r in results]
    return ValidationResult(suite=suite["name"], success=all(r.status == "pass" for r in results), row_count=rows,
                            results=results, row_id_column=row_id_column)


def _require_ids(r: ExpectationResult) -> ExpectationResult:
    if r.error is None and r.unexpected_count > 0 and not r.failing_row_ids:
        r.error = NO_IDS
        r.success = False
    return r


def spark_engine(df: "pd.DataFrame", suite: dict[str, Any], row_id_column: str) -> list[ExpectationResult]:
    """The `spark` entry of the validation engine registry: a pandas frame validated on Spark.

    Why offered for pandas frames: `privgov quality validate --engine spark` reads
    a file or stored version on the driver (the same reader and row ids as the
    other engines) and checks it with GX's Spark engine, so the two can be compared."""
    from governance.data.spark.session import spark_session

    spark = spark_session()
    return validate_spark(to_spark(spark, df), suite, row_id_column=row_id_column).results


def to_spark(spark: Any, df: "pd.DataFrame") -> "DataFrame":
    """A pandas frame as a Spark DataFrame (Arrow transfer; with I/O encryption on, no temp file)."""
    return spark.createDataFrame(df)
