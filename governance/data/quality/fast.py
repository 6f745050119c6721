"""Vectorised evaluation of the common GX expectations (the `fast` engine).

Why: GX with failing row ids (result_format COMPLETE + index columns) is 10x
slower than a boolean mask, and the common expectations are one numpy/pandas
expression each. Semantics follow GX 1.x's pandas engine exactly (the
cross-check test runs both): nulls are skipped by column map expectations and
`mostly` is measured over non-null values, except `not_be_null`, whose
denominator is every row; regexes use `str.contains` (search, not match) on
`astype(str)`; uniqueness flags every member of a duplicated group.

Evaluation is split into `partial()` (counts/masks/stats of one batch) and
`finish()` (the success decision), so Parquet batches can be merged before
deciding; see `governance.data.quality.batches`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

MAP_TYPES = {
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_be_unique",
    "expect_column_value_lengths_to_be_between",
    "expect_column_value_lengths_to_equal",
    "expect_compound_columns_to_be_unique",
}
AGG_TYPES = {
    "expect_column_mean_to_be_between",
    "expect_column_min_to_be_between",
    "expect_column_max_to_be_between",
}
TABLE_TYPES = {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
SCHEMA_TYPES = {
    "expect_column_to_exist",
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
}
FAST_TYPES = MAP_TYPES | AGG_TYPES | TABLE_TYPES | SCHEMA_TYPES
# Uniqueness needs every row at once: batch mode handles it with a global hash pass.
GLOBAL_TYPES = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
# kwargs that change which rows are evaluated; the fast engine leaves those to GX.
_GX_ONLY_KWARGS = {"row_condition", "condition_parser"}


@dataclass
class Partial:
    """What one batch contributes to one expectation's outcome."""

    kind: str  # "map" | "agg" | "table" | "schema"
    total: int = 0
    considered: int = 0  # denominator of `mostly`
    unexpected_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    stats: dict[str, float] = field(default_factory=dict)
    success: bool | None = None  # schema-level outcome, decided per batch


def supports(exp: dict[str, Any], df: pd.DataFrame) -> bool:
    """True when the fast engine reproduces GX exactly for this expectation on this frame."""
    etype, kw = exp["type"], exp["kwargs"]
    if etype not in FAST_TYPES or _GX_ONLY_KWARGS & set(kw):
        return False
    col = kw.get("column")
    if etype == "expect_column_to_exist" or col is None:
        return True
    s = df[col]
    if etype in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        # GX checks object columns value by value; only dtype-level checks are fast.
        return s.dtype != object
    if etype == "expect_column_values_to_be_between" or etype in AGG_TYPES:
        return _is_number(s) and all(
            isinstance(kw.get(k), (int, float, type(None))) and not isinstance(kw.get(k), bool)
            for k in ("min_value", "max_value")
        )
    return True


def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _np_bool(x: Any, na: bool) -> np.ndarray:
    if isinstance(x, pd.Series):
        if x.dtype == bool:
            return x.to_numpy()
        return x.to_numpy(dtype=bool, na_value=na)
    return np.asarray(x, dtype=bool)


def _between(v: Any, lo: Any, hi: Any, smin: bool, smax: bool) -> Any:
    ok = True
    if lo is not None:
        ok = (v > lo) if smin else (v >= lo)
    if hi is not None:
        ok = ok & ((v < hi) if smax else (v <= hi))
    return ok


def _lengths(s: pd.Series) -> pd.Series:
    return s.astype(str).str.len()


def _cond_between(s: pd.Series, kw: dict) -> Any:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if lo is None and hi is None:
        raise ValueError("min_value and max_value cannot both be None")
    v = s.to_numpy() if isinstance(s.dtype, np.dtype) else s  # plain numpy: no NA wrapper
    return _between(v, lo, hi, bool(kw.get("strict_min")), bool(kw.get("strict_max")))


def _contains(s: pd.Series, regex: str) -> Any:
    """`s.astype(str).str.contains(regex)`; a pattern Arrow's RE2 refuses falls back to `re`.

    Why: the suite checks that the regex compiles with Python's `re` (the
    semantics GX documents); RE2 rejects some such patterns (`a{5000}`,
    backreferences), which must not surface as ArrowInvalid."""
    try:
        return _contains_fast(s, regex)
    except Exception as exc:
        if type(exc).__name__ != "ArrowInvalid":  # pyarrow is optional here: match by name
            raise
        return s.astype(str).astype(object).str.contains(regex, na=True)


def _contains_fast(s: pd.Series, regex: str) -> Any:
    """`s.astype(str).str.contains(regex)`, as GX calls it; Arrow strings run in threads.

    For pyarrow-backed strings pandas itself calls `pc.match_substring_regex`
    (RE2) on the whole array; running it on slices in a thread pool (Arrow
    releases the GIL) gives the same answers, faster.
    """
    arr = s.array
    if isinstance(arr, pd.arrays.ArrowStringArray) and len(s) >= 200_000:
        import os
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow as pa
        import pyarrow.compute as pc

        data = pa.chunked_array(pa.array(arr)) if not hasattr(arr, "_pa_array") else arr._pa_array
        parts = max(1, min(os.cpu_count() or 1, 8))
        step = -(-len(data) // parts)
        slices = [data.slice(i, step) for i in range(0, len(data), step)]
        with ThreadPoolExecutor(parts) as pool:
            res = list(pool.map(lambda c: pc.fill_null(pc.match_substring_regex(c, regex), True), slices))
        return np.concatenate([r.to_numpy() for r in res]) if res else np.ones(0, bool)
    import warnings

    with warnings.catch_warnings():  # a suite's regex may have groups; only the match matters here
        warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
        return s.astype(str).str.contains(regex)


def _cond_lengths(s: pd.Series, kw: dict) -> Any:
    lo, hi = kw.get("min_value"), kw.get("max_value")
    return _between(_lengths(s), lo, hi, bool(kw.get("strict_min")), bool(kw.get("strict_max")))


_CONDITIONS: dict[str, Callable[[pd.Series, dict], Any]] = {
    "expect_column_values_to_be_between": _cond_between,
    "expect_column_values_to_be_in_set": lambda s, kw: (
        s.isin(kw["value_set"]) if kw.get("value_set") is not None else True
    ),
    "expect_column_values_to_not_be_in_set": lambda s, kw: (
        ~s.isin(kw["value_set"]) if kw.get("value_set") is not None else True
    ),
    "expect_column_values_to_match_regex": lambda s, kw: _contains(s, kw["regex"]),
    "expect_column_values_to_not_match_regex": lambda s, kw: ~_np_bool(_contains(s, kw["regex"]), True),
    "expect_column_value_lengths_to_be_between": _cond_lengths,
    "expect_column_value_lengths_to_equal": lambda s, kw: _lengths(s) == kw["value"],
}


def partial(exp: dict[str, Any], df: pd.DataFrame, ids: np.ndarray) -> Partial:
    """Evaluate one expectation on one frame (or batch) without deciding success."""
    etype, kw = exp["type"], exp["kwargs"]
    n = len(df)
    if etype in SCHEMA_TYPES:
        return Partial("schema", total=n, success=_schema_success(etype, kw, df))
    if etype in TABLE_TYPES:
        return Partial("table", total=n, stats={"n": float(n)})
    if etype in AGG_TYPES:
        s = df[kw["column"]]
        v = s.dropna()
        stats = {"count": float(len(v))}
        if len(v):
            stats.update(sum=float(v.sum()), min=float(v.min()), max=float(v.max()))
        return Partial("agg", total=n, stats=stats)
    if etype == "expect_compound_columns_to_be_unique":
        cols = list(kw["column_list"])
        sub = df[cols]
        miss = sub.isna()
        how = kw.get("ignore_row_if", "all_values_are_missing")
        if how == "all_values_are_missing":
            keep = ~_np_bool(miss.all(axis=1), True)
        elif how == "any_value_is_missing":
            keep = ~_np_bool(miss.any(axis=1), True)
        else:
            keep = np.ones(n, dtype=bool)
        if keep.all():
            mask = _np_bool(sub.duplicated(keep=False), False)
        else:
            mask = np.zeros(n, dtype=bool)
            mask[np.flatnonzero(keep)] = _np_bool(sub[keep].duplicated(keep=False), False)
        return Partial("map", total=n, considered=int(keep.sum()), unexpected_ids=ids[mask])
    s = df[kw["column"]]
    isna = _np_bool(s.isna(), True)
    if etype == "expect_column_values_to_not_be_null":
        return Partial("map", total=n, considered=n, unexpected_ids=ids[isna])
    if etype == "expect_column_values_to_be_null":
        return Partial("map", total=n, considered=n, unexpected_ids=ids[~isna])
    nonnull = ~isna
    considered = int(nonnull.sum())
    if etype == "expect_column_values_to_be_unique":
        bad = nonnull & _np_bool(s.duplicated(keep=False), False)
    else:
        # Conditions are elementwise, so evaluate on the full column (no filtered
        # copy) and mask out the null rows, which GX never evaluates.
        ok = _CONDITIONS[etype](s, kw)
        if isinstance(ok, bool):
            return Partial("map", total=n, considered=considered, unexpected_ids=ids[:0])
        bad = nonnull & ~_np_bool(ok, True)
    return Partial("map", total=n, considered=considered, unexpected_ids=ids[bad])


def finish(exp: dict[str, Any], p: Partial) -> bool:
    """Decide success from a (possibly merged) partial, as GX does."""
    etype, kw = exp["type"], exp["kwargs"]
    if p.kind == "schema":
        return bool(p.success)
    if p.kind == "map":
        if p.total == 0 or p.considered == 0:
            return True  # vacuously true, as in GX
        mostly = kw.get("mostly", 1.0)
        mostly = 1.0 if mostly is None else float(mostly)
        return (p.considered - len(p.unexpected_ids)) / p.considered >= mostly
    if p.kind == "table":
        n = int(p.stats["n"])
        if etype == "expect_table_row_count_to_equal":
            return n == kw["value"]
        return bool(_between(n, kw.get("min_value"), kw.get("max_value"),
                             bool(kw.get("strict_min")), bool(kw.get("strict_max"))))
    cnt = p.stats.get("count", 0.0)
    if not cnt:
        return False  # the statistic is NaN: no comparison holds
    if etype == "expect_column_mean_to_be_between":
        obs = p.stats["sum"] / cnt
    elif etype == "expect_column_min_to_be_between":
        obs = p.stats["min"]
    else:
        obs = p.stats["max"]
    return bool(_between(obs, kw.get("min_value"), kw.get("max_value"),
                         bool(kw.get("strict_min")), bool(kw.get("strict_max"))))


def merge(a: Partial, b: Partial) -> Partial:
    """Combine two batches' partials of the same expectation."""
    out = Partial(a.kind, total=a.total + b.total, considered=a.considered + b.considered,
                  unexpected_ids=np.concatenate([a.unexpected_ids, b.unexpected_ids]))
    if a.kind == "schema":
        out.success = bool(a.success) and bool(b.success)
    elif a.kind == "table":
        out.stats = {"n": a.stats["n"] + b.stats["n"]}
    elif a.kind == "agg":
        out.stats = {"count": a.stats.get("count", 0.0) + b.stats.get("count", 0.0)}
        parts = [p.stats for p in (a, b) if p.stats.get("count")]
        if parts:
            out.stats.update(sum=sum(s["sum"] for s in parts), min=min(s["min"] for s in parts),
                             max=max(s["max"] for s in parts))
    return out


# --- dtype checks, mirroring GX 1.x's pandas `_validate_pandas` ------------------------
def _native(t: str) -> tuple[type, ...]:
    return {
        "none": (type(None),), "bool": (bool,), "int": (int,), "long": (int,), "float": (float,),
        "bytes": (bytes,), "complex": (complex,), "str": (str,), "string_types": (str,),
        "list": (list,), "dict": (dict,),
    }.get(t.lower(), ())


def _pandas_type(t: str, with_instance: bool) -> list[Any]:
    out: list[Any] = []
    try:
        pd_type = getattr(pd, t)
    except AttributeError:
        pd_type = None
    if isinstance(pd_type, type):
        out.append(pd_type)
        if with_instance:
            try:
                inst = pd_type()
                if isinstance(inst, pd.api.extensions.ExtensionDtype):
                    out.append(inst)
            except TypeError:
                pass
    try:
        from pandas.core.dtypes import dtypes as _dt

        dt_type = getattr(_dt, t)
        if isinstance(dt_type, type):
            out.append(dt_type)
    except AttributeError:
        pass
    return out


def _schema_success(etype: str, kw: dict, df: pd.DataFrame) -> bool:
    col = kw.get("column")
    if etype == "expect_column_to_exist":
        cols = list(df.columns)
        idx = kw.get("column_index")
        if not idx:  # as GX 1.x: `if column_index:`, so index 0 checks existence only
            return col in cols
        return idx < len(cols) and cols[idx] == col
    dtype = df[col].dtype
    if etype == "expect_column_values_to_be_of_type":
        t = kw.get("type_")
        if t is None:
            return True
        comp: list[Any] = []
        try:
            comp.append(np.dtype(t).type)
        except (TypeError, ValueError, SyntaxError):  # numpy parses some strings (',') as code
            comp.extend(_pandas_type(t, with_instance=False))
        comp.extend(_native(t))
        return dtype.type in comp
    types = kw.get("type_list")
    if types is None:
        return True
    comp = []
    for t in types:
        try:
            comp.append(np.dtype(t).type)
            comp.append(np.dtype(t))
        except (TypeError, ValueError, SyntaxError):
            comp.extend(_pandas_type(t, with_instance=True))
        comp.extend(_native(t))
    return dtype in comp
