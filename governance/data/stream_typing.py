"""Type a CSV read as text in batches exactly as :func:`governance.data.coerce.infer_column` types the whole file.

Why a pass of its own: a type guessed from one batch can differ from the whole column's (a ZIP
code with a leading zero only in the last batch, a gap only near the end turning integers into
floats). :class:`ColumnStats` keeps, per column, the few flags and lengths `infer_column` decides
from - constant memory - over a first pass; :func:`typed` then converts each batch to that type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from governance.data.coerce import (
    FIXED_WIDTH_MIN_DIGITS, MAX_EXACT_DIGITS, _FALSE, _LEADING_ZERO, _NUMBER_RE, _TRUE, convert_column,
)


@dataclass
class ColumnStats:
    """Everything :func:`governance.data.coerce.infer_column` looks at, in constant space."""

    nonnull: int = 0
    nulls: int = 0
    all_number: bool = True
    all_bool: bool = True
    plus: bool = False
    leading_zero: bool = False
    dot: bool = False
    exp: bool = False
    min_len: int = 1 << 62
    max_len: int = 0
    first: Any = None
    several: bool = False  # at least two distinct values

    def update(self, arr: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.nulls += arr.null_count
        values = pc.drop_null(arr)
        if len(values) == 0:
            return
        self.nonnull += len(values)
        uniques = pc.unique(values)
        if not self.several:
            if self.first is None:
                self.first = uniques[0].as_py()
            self.several = len(uniques) > 1 or uniques[0].as_py() != self.first
        if self.all_bool:
            self.all_bool = bool(pc.all(pc.is_in(uniques, value_set=pa.array(sorted(_TRUE | _FALSE)))).as_py())
        if not self.all_number:
            return
        if not pc.all(pc.match_substring_regex(uniques, _NUMBER_RE)).as_py():
            self.all_number = False
            return
        text = pc.utf8_trim_whitespace(uniques)
        self.plus |= bool(pc.any(pc.starts_with(text, "+")).as_py())
        self.leading_zero |= bool(pc.any(pc.match_substring_regex(text, _LEADING_ZERO)).as_py())
        self.dot |= bool(pc.any(pc.match_substring(text, ".")).as_py())
        self.exp |= bool(pc.any(pc.match_substring_regex(text, "[eE]")).as_py())
        mm = pc.min_max(pc.utf8_length(pc.utf8_ltrim(text, characters="-"))).as_py()
        self.min_len, self.max_len = min(self.min_len, mm["min"]), max(self.max_len, mm["max"])

    def kind(self) -> str:
        """The dtype `infer_column` gives the whole column: float (all null), int, float, bool, boolean, str."""
        if self.nonnull == 0:
            return "null"
        if self.all_number and not self._identifier():
            return "int" if not (self.dot or self.exp) and self.nulls == 0 else "float"
        if self.all_bool:
            return "bool" if self.nulls == 0 else "boolean"
        return "str"

    def _identifier(self) -> bool:
        if self.plus or self.leading_zero or (self.exp and not self.dot):
            return True
        if self.dot:
            return False
        if self.max_len > MAX_EXACT_DIGITS:
            return True
        return self.several and self.min_len == self.max_len >= FIXED_WIDTH_MIN_DIGITS


def typed(name: str, arr: Any, kind: str, explicit: str | None, nulls: bool, *, source: str,
           first_line: int) -> pd.Series:
    """One text column of a batch converted to the type chosen for the whole file."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if explicit is not None:
        col = pd.Series(arr.to_pandas(), name=name)
        col = col.where(col.notna(), np.nan) if col.dtype == object else col
        out = convert_column(col, explicit, source=source, first_data_line=first_line)
        if explicit == "int" and nulls and out.dtype != "Int64":
            out = out.astype("Int64")  # the whole column has gaps: every batch is nullable
        return out
    if kind == "null":
        return pd.Series(np.full(len(arr), np.nan), name=name)
    if kind in ("int", "float"):
        trimmed = pc.utf8_trim_whitespace(arr)
        target = pa.int64() if kind == "int" else pa.float64()
        return pd.Series(pc.cast(trimmed, target).to_numpy(zero_copy_only=False), name=name)
    if kind == "bool":
        return pd.Series(pc.is_in(arr, value_set=pa.array(sorted(_TRUE))).to_numpy(zero_copy_only=False), name=name)
    col = pd.Series(arr.to_pandas(), name=name)
    if kind == "boolean":
        return col.map(lambda v: None if v is None or v != v else v in _TRUE).astype("boolean")
    return col.where(col.notna(), np.nan)  # pandas' reader gives NaN, Arrow None: keep the in-memory form
