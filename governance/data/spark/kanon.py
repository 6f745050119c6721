"""The k-anonymity gate and its opt-in row suppression on Spark (the `deid:` block's `require_k`,
`suppress_below_k`), with the same report as the pandas stage.

Class sizes come from an exact `groupBy().count()`: null and NaN quasi-identifier values form
one class of their own, as pandas' `groupby(dropna=False)` does; only the sizes (never the values)
reach the driver, and `privacy.deid.risk` turns them into the report and the gate's error.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from governance.data.spark import frame as fr
from governance.errors import InputError
from privacy.deid.risk import KAnonReport, check_k, report_from_sizes

__all__ = ["k_anonymity_spark", "require_k_spark", "suppress_below_k_spark"]


def _keys(sdf: DataFrame, quasi_identifiers: list[str], what: str) -> list[Any]:
    if not quasi_identifiers:
        raise InputError(f"{what}: expected at least one quasi-identifier column")
    missing = [c for c in quasi_identifiers if c not in sdf.columns]
    if missing:
        raise InputError(f"{what}: column(s) {', '.join(map(repr, missing))} not in the data")
    return [fr.na(c, fr.dtype_of(sdf, c)) for c in quasi_identifiers]


def k_anonymity_spark(sdf: DataFrame, quasi_identifiers: list[str]) -> KAnonReport:
    keys = _keys(sdf, quasi_identifiers, "k_anonymity")
    sizes = [r[0] for r in sdf.groupBy(*keys).count().select("count").collect()]
    return report_from_sizes(np.asarray(sizes, dtype=np.int64), sum(sizes), quasi_identifiers)


def require_k_spark(sdf: DataFrame, quasi_identifiers: list[str], k: int) -> KAnonReport:
    return check_k(k_anonymity_spark(sdf, quasi_identifiers), k)


def suppress_below_k_spark(sdf: DataFrame, quasi_identifiers: list[str], k: int, row_id_column: str,
                           ) -> tuple[DataFrame, dict[str, Any]]:
    """Drop rows in classes smaller than `k`; the report entry the pandas stage writes (row ids ascending)."""
    size = "__privgov_class_size"
    w = Window.partitionBy(*_keys(sdf, quasi_identifiers, "suppress_below_k"))
    sized = sdf.withColumn(size, F.count(F.lit(1)).over(w))
    ids = fr.sorted_ids(sized.where(F.col(size) < k), row_id_column)
    entry = {"step": "suppress_below_k", "column": ",".join(quasi_identifiers), "action": "suppress_rows",
             "k": k, "rows_suppressed": len(ids), "suppressed_row_ids": [int(x) for x in ids]}
    return sized.where(F.col(size) >= k).drop(size), entry
