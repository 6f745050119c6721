"""The text transformations of the cleaning steps, one definition each.

Why a module of their own: the Spark engine (governance.data.spark.steps) calls these very
functions inside pandas UDFs, so pandas' Unicode whitespace, case mapping and suffix rules
are the rules on both engines rather than two implementations that drift.
"""
from __future__ import annotations

import pandas as pd


def as_text(s: pd.Series) -> pd.Series:
    return s if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object else s.astype("str")


def trim(s: pd.Series) -> pd.Series:
    """The one definition of `trim_whitespace` (pandas' Unicode whitespace); Spark calls it too."""
    return as_text(s).str.strip()


def to_case(s: pd.Series, case: str) -> pd.Series:
    """pandas' Unicode case mapping (`ß`.upper() is `SS`, title case splits on non-letters)."""
    return getattr(as_text(s).str, case)()


def mask_missing(s: pd.Series, markers: list[str], strip: bool) -> pd.Series:
    """Markers become null; compared after pandas' Unicode strip when `strip`."""
    s = as_text(s)
    key = s.str.strip() if strip else s
    return s.mask(key.isin(set(markers)).to_numpy(dtype=bool))


def remove_suffix(s: pd.Series, suffix: str) -> pd.Series:
    return as_text(s).str.removesuffix(suffix)
