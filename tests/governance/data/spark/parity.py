"""Run a step list on pandas and on Spark from the same frame; compare frames and reports cell by cell."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

KEY = b"k" * 32


def keys(domain: str) -> bytes:
    return KEY + domain.encode()


def _cell(v: Any) -> Any:
    """One comparable value: every missing marker is None, numpy scalars are Python values."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime().replace(tzinfo=None)
    return v


def assert_same_frame(expected: pd.DataFrame, got: pd.DataFrame, rid: str) -> None:
    assert list(got.columns) == list(expected.columns), (list(got.columns), list(expected.columns))
    e = expected.sort_values(rid, kind="stable").reset_index(drop=True)
    g = got.sort_values(rid, kind="stable").reset_index(drop=True)
    assert len(e) == len(g), (len(e), len(g))
    for c in e.columns:
        ev, gv = [_cell(v) for v in e[c].astype(object)], [_cell(v) for v in g[c].astype(object)]
        for i, (a, b) in enumerate(zip(ev, gv)):
            assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, (c, i, a, b)
            assert a == b, f"column {c!r} row id {e[rid][i]}: pandas {a!r} != spark {b!r}"


def run_cleaning(spark, pdf: pd.DataFrame, specs: list[dict[str, Any]], rid: str = "row_id"):
    from governance.data.cleaning import apply_steps, build_steps
    from governance.data.spark.steps import apply_cleaning_spark

    exp, exp_rep = apply_steps(pdf, build_steps(specs), row_id_column=rid)
    sdf, rep = apply_cleaning_spark(to_spark(spark, pdf), build_steps(specs), row_id_column=rid)
    assert_same_frame(exp, sdf.toPandas(), rid)
    assert [r.to_dict() for r in rep] == [r.to_dict() for r in exp_rep]
    return exp, exp_rep


def run_deid(spark, pdf: pd.DataFrame, specs: list[dict[str, Any]], rid: str = "row_id"):
    from governance.data.spark.deid import apply_deid_spark
    from privacy.deid import apply_deid

    exp, exp_rep = apply_deid(pdf, specs, keys)
    sdf, rep = apply_deid_spark(to_spark(spark, pdf), specs, keys)
    assert_same_frame(exp, sdf.toPandas(), rid)
    assert rep == exp_rep
    return exp, exp_rep


def to_spark(spark, pdf: pd.DataFrame):
    """`spark.createDataFrame` with the schema Arrow reads from the frame (an empty frame has nothing to infer from)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(pa.Schema.from_pandas(pdf, preserve_index=False))
    return spark.createDataFrame(pdf, schema=schema)
