"""Small Spark helpers shared by the cleaning and de-identification steps.

Why one home: every Spark step must quote odd column names (spaces, dots), see pandas'
missing values (null *and* NaN) the way pandas does, and hand a pandas UDF the dtype the
pandas path would have seen. Getting one of these wrong in one step breaks parity silently.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from governance.errors import InputError

NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
FLOATING = (T.FloatType, T.DoubleType)


def ensure_python_workers() -> None:
    """Spark starts Python workers with `python3` from PATH unless told otherwise; they must be
    this interpreter, or pandas UDFs fail with "No module named pandas". Call before the session starts."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def col(name: str) -> Column:
    """A column by its exact name: backticks so `a.b` and `a b` are names, not paths."""
    return F.col("`" + name.replace("`", "``") + "`")


def dtype_of(sdf: DataFrame, name: str) -> T.DataType:
    return sdf.schema[name].dataType


def need(sdf: DataFrame, name: str, label: str, kind: str | None = None) -> T.DataType:
    """The column's Spark type; InputError naming the step, column and expected type otherwise
    (the same rule and message shape as the pandas `Step.need`)."""
    if name not in sdf.columns:
        raise InputError(f"{label}: column {name!r} is not in the data; expected one of {list(sdf.columns)[:20]}")
    dt = dtype_of(sdf, name)
    if kind == "string" and not isinstance(dt, T.StringType):
        raise InputError(f"{label}: column {name!r} has type {dt.simpleString()}; expected a string column")
    if kind == "numeric" and not isinstance(dt, NUMERIC):
        raise InputError(f"{label}: column {name!r} has type {dt.simpleString()}; expected a numeric column")
    return dt


def na(name: str, dt: T.DataType) -> Column:
    """The column with NaN read as null: pandas' `isna` sees both as missing, Spark only null."""
    c = col(name)
    return F.nanvl(c, F.lit(None).cast(dt)) if isinstance(dt, FLOATING) else c


def is_na(name: str, dt: T.DataType) -> Column:
    return na(name, dt).isNull()


def differs(old: Column, old_dt: T.DataType, new: Column, new_dt: T.DataType) -> Column:
    """True where a cell changed, as pandas compares before/after: two missing values are equal;
    the same type compares values; two numeric types (or bool) compare as numbers (1 == 1.0 == True
    in Python); other type changes make every cell that is not missing on both sides a change."""
    def nan_null(c: Column, dt: T.DataType) -> Column:
        return F.nanvl(c, F.lit(None).cast(dt)) if isinstance(dt, FLOATING) else c

    a, b = nan_null(old, old_dt), nan_null(new, new_dt)
    both_null = a.isNull() & b.isNull()
    numberish = (*NUMERIC, T.BooleanType)
    if old_dt == new_dt:
        return ~a.eqNullSafe(b)
    if isinstance(old_dt, numberish) and isinstance(new_dt, numberish):
        return ~a.cast("double").eqNullSafe(b.cast("double"))
    return ~both_null


def as_pandas_input(s: pd.Series, dt: T.DataType) -> pd.Series:
    """The dtype pandas would hold for this Spark type: Arrow hands a nullable long column to a
    UDF as float64 (1 -> 1.0, which pseudonymizes and prints differently); the pandas path holds Int64."""
    if isinstance(dt, INTEGRAL):
        return s.astype("Int64")
    if isinstance(dt, T.BooleanType):
        return s.astype("boolean")
    if isinstance(dt, T.StringType):
        return s.astype("str")
    return s


def series_udf(fn: Callable[[pd.Series], pd.Series], in_dt: T.DataType, out_dt: T.DataType | str) -> Callable[..., Column]:
    """A scalar pandas UDF that calls `fn` — the same function the pandas path calls — on each Arrow batch."""
    def run(s: pd.Series) -> pd.Series:
        out = fn(as_pandas_input(s, in_dt))
        if isinstance(out_dt, T.StringType) or out_dt == "string":
            return out.astype(object).where(out.notna(), None)
        return out

    return F.pandas_udf(run, out_dt)  # type: ignore[call-overload]


def column_to_pandas(sdf: DataFrame, name: str, row_id_column: str) -> pd.Series:
    """One column on the driver, as the pandas path would hold it, in row-id order.

    Why collect rather than aggregate in Spark: `avg`/`stddev` sum in another order and
    `percentile` interpolates with another formula than numpy, so fences, means and medians would
    differ in the last bits and clip or flag another row at a boundary. A single numeric column is
    8 bytes per row on the driver; the statistic is then computed by the very pandas helper the
    pandas path uses. Row-id order (the pandas frame's order after ingest) matters: numpy sums
    pairwise, so a mean over the same values in another order can differ in the last bit."""
    dt = dtype_of(sdf, name)
    s = sdf.select(col(row_id_column), col(name).alias("__privgov_v")).orderBy(col(row_id_column)).toPandas()
    s = s["__privgov_v"]
    return as_pandas_input(s, dt).rename(name)


def literal(value: Any, dt: T.DataType, label: str, name: str) -> Column:
    """`value` as a literal of the column's type, or InputError when it does not fit: a Spark column
    has one type, where pandas would fall back to a mixed object column."""
    if value is None:
        return F.lit(None).cast(dt)
    ok = ((isinstance(dt, T.StringType) and isinstance(value, str))
          or (isinstance(dt, INTEGRAL) and isinstance(value, int) and not isinstance(value, bool))
          or (isinstance(dt, (*FLOATING, T.DecimalType)) and isinstance(value, (int, float)) and not isinstance(value, bool))
          or (isinstance(dt, T.BooleanType) and isinstance(value, bool)))
    if not ok:
        raise InputError(f"{label}: value {value!r} does not fit column {name!r} of type {dt.simpleString()} "
                         "on Spark; expected a value of the column's type (a Spark column has one type)")
    return F.lit(value).cast(dt)


def count_rows(sdf: DataFrame) -> int:
    return int(sdf.count())


def sorted_ids(sdf: DataFrame, row_id_column: str) -> list[Any]:
    """Row ids in ascending order (the pandas path lists them in frame order, which is row-id order after ingest)."""
    return [r[0] for r in sdf.select(col(row_id_column)).orderBy(col(row_id_column)).collect()]
