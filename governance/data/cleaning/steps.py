"""The built-in cleaning steps. Each is small, typed and registered by name.

Column-type rules are strict on purpose: trimming a numeric column or
standardising a string column is a spec mistake, reported as InputError naming
the step, the column and the expected type, not silently skipped.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from governance.data.cleaning.base import Step, StepParams, StepReport, is_text, register_step
from governance.data.cleaning.text import mask_missing, remove_suffix, to_case, trim
from governance.errors import InputError

DEFAULT_MISSING = ["?", "", "NA", "N/A", "n/a", "na", "null", "NULL", "None", "none", "NaN", "nan", "-"]


def _text_columns(df: pd.DataFrame, cols: list[str] | None, row_id_column: str) -> list[str]:
    if cols:
        return list(cols)
    return [c for c in df.columns if c != row_id_column and is_text(df[c])]



class ColumnsParams(StepParams):
    columns: list[str] | None = Field(default=None, description="Columns acted on; default: every text column "
                                      "(all columns for drop_missing).")


class RequiredColumnsParams(StepParams):
    columns: list[str] = Field(min_length=1, description="Columns acted on.")


@register_step
class TrimWhitespace(Step):
    """Strip leading/trailing whitespace (e.g. Adult's `, ` separators)."""

    name = "trim_whitespace"
    Params = ColumnsParams

    def columns(self, df, row_id_column):
        return _text_columns(df, self.params.columns, row_id_column)

    def run(self, df, report, row_id_column):
        for c in self.columns(df, row_id_column):
            df[c] = trim(self.need(df, c, "string"))
        return df



class CaseParams(RequiredColumnsParams):
    case: Literal["lower", "upper", "title"] = Field(default="lower", description="Target case.")


@register_step
class NormalizeCase(Step):
    """Rewrite text in one case, so `F` and `f` become one category."""

    name = "normalize_case"
    Params = CaseParams

    def run(self, df, report, row_id_column):
        for c in self.params.columns:
            df[c] = to_case(self.need(df, c, "string"), self.params.case)
        return df



class MapParams(RequiredColumnsParams):
    mapping: dict[str, Any] = Field(min_length=1, description="Exact value -> replacement.")


@register_step
class MapValues(Step):
    """Replace known synonyms exactly, e.g. {"M": "male", "m": "male"}; other values stay."""

    name = "map_values"
    Params = MapParams

    def run(self, df, report, row_id_column):
        for c in self.params.columns:
            df[c] = map_series(self.need(df, c), self.params.mapping)
        return df


def map_series(s: pd.Series, mapping: dict[str, Any]) -> pd.Series:
    """Exact replacements; YAML/JSON keys are strings, so numeric columns match parsed keys."""
    mapping = dict(mapping)
    if not is_text(s):
        mapping = {_parse_key(k, s): v for k, v in mapping.items()}
    hit = s.isin(list(mapping)).to_numpy(dtype=bool)
    if not hit.any():
        return s
    if pd.api.types.is_string_dtype(s.dtype) and s.dtype != object and all(isinstance(v, str) for v in mapping.values()):
        # text to text on a string column: one vectorised comparison per key, no object round trip
        out = s.copy(deep=False)
        for k, v in mapping.items():
            out = out.mask(s == k, v)
        return out
    new = s.astype(object).copy()
    new[hit] = s[hit].map(mapping).astype(object)
    return _restore(new, s)


def _parse_key(k: str, s: pd.Series) -> Any:
    try:
        return float(k) if pd.api.types.is_float_dtype(s.dtype) else int(k)
    except (TypeError, ValueError):
        return k


def _restore(new: pd.Series, old: pd.Series) -> pd.Series:
    """Keep the original dtype when every mapped value still fits it."""
    try:
        return new.astype(old.dtype)
    except (TypeError, ValueError):
        return new.infer_objects()


class MissingParams(ColumnsParams):
    markers: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING), description="Values read as missing.")
    strip: bool = Field(default=True, description="Compare with surrounding whitespace removed.")


@register_step
class NormalizeMissing(Step):
    """Turn missing-value markers (`?`, ``, `NA`...) into real nulls."""

    name = "normalize_missing"
    Params = MissingParams

    def columns(self, df, row_id_column):
        return _text_columns(df, self.params.columns, row_id_column)

    def run(self, df, report, row_id_column):
        for c in self.columns(df, row_id_column):
            df[c] = mask_missing(self.need(df, c, "string"), self.params.markers, self.params.strip)
        return df



class SuffixParams(RequiredColumnsParams):
    suffix: str = Field(min_length=1, description="Trailing text removed where present.")


@register_step
class StripSuffix(Step):
    """Remove a trailing marker, e.g. the `.` on Adult test labels (`>50K.`)."""

    name = "strip_suffix"
    Params = SuffixParams

    def run(self, df, report, row_id_column):
        for c in self.params.columns:
            df[c] = remove_suffix(self.need(df, c, "string"), self.params.suffix)
        return df



class CoerceParams(StepParams):
    types: dict[str, Literal["int", "float", "str", "bool", "datetime", "category"]] = Field(
        min_length=1, description="Column -> target type.")
    datetime_format: str | None = Field(default=None, description="strftime format for `datetime`; default: inferred.")
    on_error: Literal["null", "raise"] = Field(default="null", description="Unparseable values become null "
                                               "(reported by row id) or stop the run.")


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@register_step
class CoerceTypes(Step):
    """Parse columns to types; values that fail become null and are reported by row id."""

    name = "coerce_types"
    Params = CoerceParams

    def columns(self, df, row_id_column):
        return list(self.params.types)

    def run(self, df, report, row_id_column):
        for c, t in self.params.types.items():
            s = self.need(df, c)
            new = self.coerce_series(s, t)
            failed = (s.notna().to_numpy(dtype=bool) & new.isna().to_numpy(dtype=bool))
            self.record_failures(report, c, t, df[row_id_column].to_numpy()[failed].tolist())
            df[c] = new
        return df

    def record_failures(self, report: StepReport, column: str, t: str, ids: list[Any]) -> None:
        """Unparseable values stop the run (`on_error: raise`) or are reported by row id; both engines call this."""
        if not ids:
            return
        if self.params.on_error == "raise":
            raise InputError(f"{self.label}: {len(ids)} value(s) in column {column!r} are not {t} "
                             f"(first row id {ids[0]}); expected parseable values")
        report.failed_row_ids[column] = ids

    def coerce_series(self, s: pd.Series, t: str) -> pd.Series:
        """One column to type `t` (failures become null); the Spark path calls this in a pandas UDF."""
        if t in ("int", "float"):
            num = pd.to_numeric(s.astype(object) if is_text(s) else s, errors="coerce")
            if t == "float":
                return num.astype("float64")
            num = num.astype("float64")
            frac = num.notna() & (num != np.floor(num))
            return num.mask(frac).astype("Int64")
        if t == "str":
            return s.astype("str")
        if t == "bool":
            low = s.astype("str").str.strip().str.lower()
            out = pd.Series(pd.NA, index=s.index, dtype="boolean")
            out[low.isin(_TRUE).to_numpy(dtype=bool)] = True
            out[low.isin(_FALSE).to_numpy(dtype=bool)] = False
            return out
        if t == "datetime":
            return pd.to_datetime(s, errors="coerce", format=self.params.datetime_format)
        return s.astype("category")


class DedupParams(StepParams):
    key: list[str] | None = Field(default=None, description="Columns that identify a duplicate; default: all "
                                  "but the row id.")
    keep: Literal["first", "last"] = Field(default="first", description="Which duplicate stays.")


@register_step
class DropDuplicates(Step):
    """Drop exact duplicate rows (all columns but the row id), or duplicates on a declared key."""

    name = "drop_duplicates"
    Params = DedupParams

    def run(self, df, report, row_id_column):
        key = self.need_columns(df, self.params.key, row_id_column)
        return df[~df.duplicated(subset=key, keep=self.params.keep).to_numpy(dtype=bool)]


class ImputeParams(RequiredColumnsParams):
    strategy: Literal["mean", "median", "mode", "constant"] = Field(description="How the fill value is chosen.")
    value: Any = Field(default=None, description="Fill value; required with strategy `constant`.")


@register_step
class Impute(Step):
    """Fill nulls per column (counts of filled values are reported per column)."""

    name = "impute"
    Params = ImputeParams

    def run(self, df, report, row_id_column):
        strat = self.params.strategy
        if strat == "constant" and self.params.value is None:
            raise InputError(f"{self.label}: strategy 'constant' needs key 'value'; expected e.g. value: 0")
        filled: dict[str, int] = {}
        for c in self.params.columns:
            s = self.need(df, c, "numeric" if strat in ("mean", "median") else None)
            if strat == "mean":
                fill = self.fixed[c] if c in self.fixed else s.mean()
            elif strat == "median":
                fill = s.median()
            elif strat == "mode":
                m = s.mode(dropna=True)
                fill = m.iloc[0] if len(m) else None
            else:
                fill = self.params.value
            n = int(s.isna().sum())
            if fill is None or (isinstance(fill, float) and np.isnan(fill)) or n == 0:
                filled[c] = 0
                continue
            if pd.api.types.is_integer_dtype(s.dtype) and isinstance(fill, float) and not fill.is_integer():
                s = s.astype("float64")
            df[c] = s.fillna(fill)
            filled[c] = n
        report.details["filled"] = filled
        return df


class DropMissingParams(ColumnsParams):
    how: Literal["any", "all"] = Field(default="any", description="Drop a row when any / all of the columns are null.")


@register_step
class DropMissing(Step):
    """Drop rows with nulls (their row ids are reported)."""

    name = "drop_missing"
    Params = DropMissingParams

    def run(self, df, report, row_id_column):
        cols = self.need_columns(df, self.params.columns, row_id_column)
        miss = df[cols].isna()
        drop = miss.any(axis=1) if self.params.how == "any" else miss.all(axis=1)
        return df[~drop.to_numpy(dtype=bool)]


class OutlierParams(RequiredColumnsParams):
    method: Literal["iqr", "zscore"] = Field(default="iqr", description="Fences from the IQR or from mean and std.")
    k: float = Field(default=1.5, gt=0, description="IQR multiple of the fences (method `iqr`).")
    z: float = Field(default=3.0, gt=0, description="Standard deviations of the fences (method `zscore`).")


def outlier_bounds(s: pd.Series, p: OutlierParams) -> tuple[float, float]:
    v = s.dropna().astype("float64")
    if v.empty:
        return -np.inf, np.inf
    if p.method == "iqr":
        q1, q3 = v.quantile(0.25), v.quantile(0.75)
        iqr = q3 - q1
        return float(q1 - p.k * iqr), float(q3 + p.k * iqr)
    mu, sd = float(v.mean()), float(v.std(ddof=0))
    return mu - p.z * sd, mu + p.z * sd


@register_step
class ClipOutliers(Step):
    """Clip values outside IQR fences (q1 - k*IQR, q3 + k*IQR) or mean +- z*std."""

    name = "clip_outliers"
    Params = OutlierParams

    def run(self, df, report, row_id_column):
        for c in self.params.columns:
            s = self.need(df, c, "numeric")
            lo, hi = self.fixed[c] if c in self.fixed else outlier_bounds(s, self.params)
            if pd.api.types.is_integer_dtype(s.dtype):  # keep ints: clip to the integer fences
                lo, hi = np.ceil(lo), np.floor(hi)
            df[c] = s.clip(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
        return df


class FlagParams(OutlierParams):
    suffix: str = Field(default="_outlier", description="Name suffix of the added flag column.")


@register_step
class FlagOutliers(Step):
    """Add a boolean `<column><suffix>` column marking outliers; values are not changed."""

    name = "flag_outliers"
    Params = FlagParams

    def columns(self, df, row_id_column):
        return []

    def run(self, df, report, row_id_column):
        flagged: dict[str, list[Any]] = {}
        for c in self.params.columns:
            s = self.need(df, c, "numeric")
            lo, hi = self.fixed[c] if c in self.fixed else outlier_bounds(s, self.params)
            v = s.astype("float64")
            flag = ((v < lo) | (v > hi)).to_numpy(dtype=bool, na_value=False)
            df[c + self.params.suffix] = flag
            flagged[c] = df[row_id_column].to_numpy()[flag].tolist()
        report.details["flagged_row_ids"] = flagged
        return df


class _Rescale(Step):
    """(x - center) / scale per declared numeric column; a constant column becomes 0."""

    Params = RequiredColumnsParams

    def center_scale(self, v: pd.Series) -> tuple[float, float]:
        raise NotImplementedError

    def run(self, df, report, row_id_column):
        for c in self.params.columns:
            v = self.need(df, c, "numeric").astype("float64")
            center, scale = self.fixed[c] if c in self.fixed else self.center_scale(v)
            df[c] = (v - center) / scale if scale > 0 else v * 0.0
        return df


@register_step
class Standardize(_Rescale):
    """z-score: (x - mean) / std (population std); a constant column becomes 0."""

    name = "standardize"

    def center_scale(self, v):
        return v.mean(), float(v.std(ddof=0))


@register_step
class Normalize(_Rescale):
    """Min-max scaling to [0, 1]; a constant column becomes 0."""

    name = "normalize"

    def center_scale(self, v):
        lo, hi = v.min(), v.max()
        return lo, hi - lo
