"""Enforce a decision's obligations on data before it leaves privgov.

Why separate from the engine: `policies/` decides (pure, no data); this module
is where a decision meets a DataFrame. Masks: `drop` removes the column, `hash`
replaces values by keyed HMAC pseudonyms (joinable, not reversible without the
key), `partial` keeps a short prefix (e.g. ZIP 941**) and masks the rest.
"""
from __future__ import annotations

import pandas as pd

from policies.engine import Obligations, row_filter_mask
from privacy.deid import pseudonymize
from privacy.errors import InputError


def _partial(col: pd.Series, keep: int = 3) -> pd.Series:
    s = col.astype("string")
    return s.str.slice(0, keep) + s.str.slice(keep).str.replace(r".", "*", regex=True)


def apply_obligations(df: pd.DataFrame, obligations: Obligations, *, key: bytes) -> pd.DataFrame:
    """Row filter first (it may read a column that is then masked), then masks."""
    out = df[row_filter_mask(obligations.row_filter, df)].copy()
    for column, mask in obligations.column_masks.items():
        if column not in out.columns:
            continue  # already dropped or de-identified upstream: nothing to reveal
        if mask == "drop":
            out = out.drop(columns=[column])
        elif mask == "hash":
            out[column] = pseudonymize(out[column], key, domain=f"mask:{column}")
        elif mask == "partial":
            out[column] = _partial(out[column])
        else:
            raise InputError(f"policy mask for column `{column}`: unknown kind {mask!r} (expected drop, hash, partial)")
    return out.reset_index(drop=True)


def filter_problem(row_filter: str | None, df: pd.DataFrame) -> str | None:
    """Why a row filter cannot be evaluated on these stored columns, or None when it can.

    Fail closed: a filter written for released columns (e.g. age bands like
    "0-19") evaluated on a version that holds other columns or other types
    (raw integer ages in a quarantine) would silently keep every row."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    from policies.engine import parse_row_filter

    if not row_filter:
        return None
    for c in parse_row_filter(row_filter):
        if c.column not in df.columns:
            return f"row filter column `{c.column}` is not in this version"
        if c.value is None:
            continue
        values = c.value if isinstance(c.value, list) else [c.value]
        col = df[c.column]
        numeric_col = is_numeric_dtype(col) and not is_bool_dtype(col)
        for v in values:
            numeric_val = isinstance(v, (int, float)) and not isinstance(v, bool)
            if numeric_col != numeric_val:
                return (f"row filter `{c.column} {c.op} {v!r}` compares a {type(v).__name__} with column "
                        f"`{c.column}` of type {col.dtype} in this version")
    return None
