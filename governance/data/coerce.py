"""Safe typing of a CSV read as text: numbers become numbers, identifiers stay text.

Why: pandas guesses types per column and turns ZIP `02134` into the integer 2134,
`+16175550134` into a float and `00123` case numbers into 123. The damage is
silent and permanent: validation, de-identification (a ZIP prefix of `213`) and
the encrypted version all see the wrong value. So every CSV column is read as
text first and converted only when the conversion is lossless and the column
does not look like an identifier:

* every non-missing value is a plain decimal number (no `inf`, `nan`, `1_000`);
* no value has a leading zero (`02134`, `007`) or a `+` sign (`+4930...`);
* exponents (`1E5`) count as numbers only in a column that also has decimals;
* an integer column whose values all have the same number of digits (6 or more,
  at least two distinct values) is a fixed-width code, as is any integer wider
  than 15 digits (a float64 could not hold it exactly).

Explicit `dtype` per column overrides the guess. Errors name the column and a
line number, never the offending value (it may be PII).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from governance.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

_NUMBER_RE = r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$"
_LEADING_ZERO = r"^-?0\d"
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
FIXED_WIDTH_MIN_DIGITS = 6
MAX_EXACT_DIGITS = 15


def _strings(col: pd.Series) -> "pa.Array":
    """The column's non-missing values as an Arrow string array (zero-copy for Arrow-backed text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(col.array if hasattr(col.array, "__arrow_array__") else col.to_numpy(dtype=object),
                   from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    return pc.drop_null(arr)


def _any(mask) -> bool:
    import pyarrow.compute as pc

    return bool(pc.any(mask).as_py() or False)


def looks_like_identifier(uniques: "pa.Array") -> bool:
    """True when numeric-looking text (the distinct values of a column) is a code, not a quantity."""
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(uniques)
    if _any(pc.starts_with(text, "+")) or _any(pc.match_substring_regex(text, _LEADING_ZERO)):
        return True
    has_dot = _any(pc.match_substring(text, "."))
    if _any(pc.match_substring_regex(text, "[eE]")) and not has_dot:
        return True  # 1E5, 12E4: part numbers that spreadsheets turn into floats
    if has_dot:
        return False
    lengths = pc.min_max(pc.utf8_length(pc.utf8_ltrim(text, characters="-"))).as_py()
    if lengths["max"] > MAX_EXACT_DIGITS:
        return True
    return len(text) >= 2 and lengths["min"] == lengths["max"] >= FIXED_WIDTH_MIN_DIGITS


def _numeric(col: pd.Series) -> pd.Series | None:
    """The column as int64/float64 when every value is a plain number, else None.

    Arrow does the work (RE2 over the distinct values, a C cast): text columns are
    rejected on their first values, so typing costs little next to parsing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _strings(col)
    head = values.slice(0, 256)
    if not pc.all(pc.match_substring_regex(head, _NUMBER_RE)).as_py():
        return None
    uniques = pc.unique(values)
    if not pc.all(pc.match_substring_regex(uniques, _NUMBER_RE)).as_py() or looks_like_identifier(uniques):
        return None
    integral = not _any(pc.match_substring_regex(uniques, "[.eE]"))
    full = pa.array(col.array if hasattr(col.array, "__arrow_array__") else col.to_numpy(dtype=object),
                    from_pandas=True)
    trimmed = pc.utf8_trim_whitespace(full.cast(pa.string()) if not pa.types.is_string(full.type) else full)
    complete = full.null_count == 0
    try:
        if integral and complete:
            out = pc.cast(trimmed, pa.int64()).to_numpy(zero_copy_only=False)
        else:
            out = pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.Series(out, index=col.index, name=col.name)


def _boolean(col: pd.Series) -> pd.Series | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _strings(col)
    if not pc.all(pc.is_in(values.slice(0, 256), value_set=pa.array(sorted(_TRUE | _FALSE)))).as_py():
        return None  # text columns are rejected on their first values
    uniques = set(pc.unique(values).to_pylist())
    if not uniques or not uniques <= (_TRUE | _FALSE):
        return None
    if col.isna().any():
        return col.map(lambda v: None if pd.isna(v) else v in _TRUE).astype("boolean")
    return col.isin(_TRUE)


def infer_column(col: pd.Series) -> pd.Series:
    """Convert one text column when safe (see module docstring); otherwise return it unchanged."""
    if not (col.dtype == object or pd.api.types.is_string_dtype(col.dtype)):
        return col
    if col.isna().all():
        return col.astype(np.float64)  # what pandas gives an empty column
    for convert in (_numeric, _boolean):
        out = convert(col)
        if out is not None:
            return out
    return col


def _first_bad_line(bad: pd.Series, first_data_line: int) -> int:
    return first_data_line + int(np.flatnonzero(bad.to_numpy())[0])


def convert_column(col: pd.Series, kind: str, *, source: str, first_data_line: int = 2) -> pd.Series:
    """Apply an explicit `dtype` (str, int, float, bool, date); InputError names column and line."""
    if kind == "str":
        return col
    present = col.notna()
    text = col.where(present, None)
    if kind in ("int", "float"):
        num = pd.to_numeric(text.str.strip() if text.dtype == object else text, errors="coerce")
        bad = present & num.isna()
        if kind == "int" and not bad.any():
            bad = present & (num % 1 != 0)
        if bad.any():
            raise InputError(f"{source}: option dtype {col.name}={kind}: {int(bad.sum())} value(s) are not "
                             f"{'whole numbers' if kind == 'int' else 'numbers'} (first on line "
                             f"{_first_bad_line(bad, first_data_line)}); expected only {kind} values or empty cells")
        if kind == "float":
            return num.astype(np.float64)
        return num.astype(np.int64) if not col.isna().any() else num.astype("Int64")
    if kind == "bool":
        lowered = text.str.strip().str.lower()
        bad = present & ~lowered.isin(["true", "false", "1", "0", "yes", "no"])
        if bad.any():
            raise InputError(f"{source}: option dtype {col.name}=bool: {int(bad.sum())} value(s) are not "
                             f"true/false/1/0/yes/no (first on line {_first_bad_line(bad, first_data_line)})")
        return lowered.map({"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False},
                           na_action="ignore").astype("boolean")
    if kind == "date":
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
        bad = present & parsed.isna()
        if bad.any():
            raise InputError(f"{source}: option dtype {col.name}=date: {int(bad.sum())} value(s) are not dates "
                             f"(first on line {_first_bad_line(bad, first_data_line)}); expected e.g. 2024-03-31")
        return parsed
    raise InputError(f"{source}: option dtype {col.name}={kind}: expected one of str, int, float, bool, date")


def apply_types(df: pd.DataFrame, dtypes: dict[str, str], *, source: str, first_data_line: int = 2) -> pd.DataFrame:
    """Explicit dtypes first (unknown columns refused), then safe inference for the rest."""
    unknown = [c for c in dtypes if c not in df.columns]
    if unknown:
        raise InputError(f"{source}: option dtype names column(s) {', '.join(map(repr, unknown[:5]))} that the "
                         f"file does not have; expected some of {', '.join(map(str, list(df.columns)[:20]))}")
    out = {}
    for name in df.columns:
        col = df[name]
        if name in dtypes:
            out[name] = convert_column(col, dtypes[name], source=source, first_data_line=first_data_line)
        else:
            out[name] = infer_column(col)
    return pd.DataFrame(out, index=df.index, columns=df.columns)
