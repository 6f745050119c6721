"""Profile a DataFrame into a starting GX 1.x suite.

Why: writing a suite from scratch is the main reason teams skip validation.
The suggestion passes on the data it was profiled from; people then tighten it.
Value sets are emitted only for low-cardinality columns (at most 50 distinct
values) and never for string columns whose values are mostly unique: those are
likely identifiers or free text (names, emails), and a value set would copy
PII into the suite file.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from governance.errors import InputError

MAX_SET_SIZE = 50
MAX_STRING_UNIQUENESS = 0.5  # distinct / non-null above this: looks like an identifier


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _floor(x: float, digits: int = 3) -> float:
    f = 10**digits
    return math.floor(x * f) / f


def suggest_suite(df: pd.DataFrame, *, row_id_column: str = "row_id", name: str = "suggested") -> dict[str, Any]:
    """Return a GX 1.x suite dict (`{"name", "expectations"}`) describing `df`."""
    if len(df) == 0:
        raise InputError(f"suggest {name}: the data has no rows; expected at least one row to profile")
    exps: list[dict[str, Any]] = [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ]
    if row_id_column in df.columns:
        exps += [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": row_id_column}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": row_id_column}},
        ]
    n = len(df)
    for col in df.columns:
        if col == row_id_column:
            continue
        s = df[col]
        exps.append({"type": "expect_column_to_exist", "kwargs": {"column": col}})
        tname = _type_name(s)
        if tname:
            exps.append({"type": "expect_column_values_to_be_of_type", "kwargs": {"column": col, "type_": tname}})
        nulls = int(s.isna().sum())
        if nulls < n:
            kw: dict[str, Any] = {"column": col}
            if nulls:
                kw["mostly"] = _floor(1 - nulls / n)
            exps.append({"type": "expect_column_values_to_not_be_null", "kwargs": kw})
        v = s.dropna()
        if v.empty:
            continue
        is_bool = pd.api.types.is_bool_dtype(s.dtype)
        if pd.api.types.is_numeric_dtype(s.dtype) and not is_bool:
            exps.append({"type": "expect_column_values_to_be_between",
                         "kwargs": {"column": col, "min_value": _plain(v.min()), "max_value": _plain(v.max())}})
        distinct = int(v.nunique())
        is_text = pd.api.types.is_string_dtype(s.dtype) or s.dtype == object
        looks_like_id = is_text and distinct / len(v) > MAX_STRING_UNIQUENESS and distinct > 1
        is_float = pd.api.types.is_float_dtype(s.dtype)
        is_time = pd.api.types.is_datetime64_any_dtype(s.dtype) or pd.api.types.is_timedelta64_dtype(s.dtype)
        if distinct <= MAX_SET_SIZE and not looks_like_id and not is_float and not is_time:
            values = sorted((_plain(x) for x in v.unique()), key=lambda x: (str(type(x)), x))
            exps.append({"type": "expect_column_values_to_be_in_set",
                         "kwargs": {"column": col, "value_set": values}})
    return {"name": name, "expectations": exps, "meta": {"generated_by": "privgov suggest_suite"}}


def _type_name(s: pd.Series) -> str | None:
    """A type name GX 1.x's pandas `be_of_type` accepts for this dtype, or None to skip.

    Object and most extension dtypes are skipped: GX checks them value by value,
    or (pandas 3 `str`) only `be_of_type` with "str" matches.
    """
    dt = s.dtype
    if isinstance(dt, pd.StringDtype) or dt.type is str:
        return "str"
    if dt == object or isinstance(dt, pd.api.extensions.ExtensionDtype):
        return None
    return dt.name
