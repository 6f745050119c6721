"""Cleaning steps on Spark: the same registry names and parameters as `governance.data.cleaning`.

`apply_cleaning_spark(sdf, build_steps(specs), row_id_column=...)` returns the cleaned Spark
frame and one `StepReport` per step, with the same counts and row ids as `apply_steps` on the
same data (tests/governance/data/spark/test_steps_parity.py holds every step to that).

How each step keeps pandas' semantics:
* native column expressions where Spark's semantics are the same: `strip_suffix`, `map_values`,
  `normalize_missing` with `strip: false`, `drop_missing`, `drop_duplicates`, `impute`,
  `clip_outliers`, `flag_outliers`, `standardize`, `normalize`;
* a pandas UDF calling the very function the pandas step calls, where a Spark expression
  cannot reproduce it: `trim_whitespace` and `normalize_missing` with `strip` (Python/Arrow
  Unicode whitespace, Spark's `trim` strips only spaces), `normalize_case` (Unicode case mapping
  and title-casing differ from Java's), `coerce_types` (pandas' number, bool and date parsing);
* global state (medians, means, fences, modes) computed exactly: by the same pandas helper on
  the column collected to the driver, or (modes, duplicates) by exact Spark grouping — never
  approxQuantile. "First"/"last" duplicate and "first" date format follow row-id order, which is
  the frame order the pandas path sees after ingest.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from governance.data.cleaning import StepReport, step_classes
from governance.data.cleaning import steps as pd_steps
from governance.data.cleaning import text
from governance.data.cleaning.base import Step
from governance.data.spark import frame as fr
from governance.data.spark.registry import IMPLEMENTED, REFUSED, implements
from governance.errors import InputError

__all__ = ["apply_cleaning_spark"]


def _text_columns(step: Step, sdf: DataFrame, rid: str) -> list[str]:
    cols = getattr(step.params, "columns", None)
    if cols:
        return list(cols)
    return [c for c in sdf.columns if c != rid and isinstance(fr.dtype_of(sdf, c), T.StringType)]


def _need_columns(step: Step, sdf: DataFrame, declared: list[str] | None, rid: str) -> list[str]:
    cols = list(declared) if declared else [c for c in sdf.columns if c != rid]
    for c in cols:
        fr.need(sdf, c, step.label)
    return cols


def _text_udf(step: Step, sdf: DataFrame, cols: list[str], fn: Any) -> dict[str, Column]:
    out = {}
    for c in cols:
        dt = fr.need(sdf, c, step.label, "string")
        out[c] = fr.series_udf(fn, dt, T.StringType())(fr.col(c))
    return out


@implements("cleaning", "trim_whitespace")
def _trim(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    return _text_udf(step, sdf, _text_columns(step, sdf, rid), text.trim)


@implements("cleaning", "normalize_case")
def _case(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    case = step.params.case
    return _text_udf(step, sdf, list(step.params.columns), lambda s: text.to_case(s, case))


@implements("cleaning", "normalize_missing")
def _missing(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    p = step.params
    cols = _text_columns(step, sdf, rid)
    if p.strip:
        markers, strip = list(p.markers), p.strip
        return _text_udf(step, sdf, cols, lambda s: text.mask_missing(s, markers, strip))
    out = {}
    for c in cols:
        fr.need(sdf, c, step.label, "string")
        out[c] = F.when(fr.col(c).isin(list(p.markers)), F.lit(None).cast("string")).otherwise(fr.col(c))
    return out


@implements("cleaning", "strip_suffix")
def _suffix(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    suffix = step.params.suffix
    out = {}
    for c in step.params.columns:
        fr.need(sdf, c, step.label, "string")
        x = fr.col(c)
        out[c] = F.when(x.endswith(F.lit(suffix)), x.substr(F.lit(1), F.length(x) - len(suffix))).otherwise(x)
    return out


def _map_key(k: str, dt: T.DataType) -> Any:
    """pandas' `_parse_key`: JSON keys are strings; a numeric column matches their parsed value."""
    try:
        return float(k) if isinstance(dt, fr.FLOATING) else int(k)
    except (TypeError, ValueError):
        return None


@implements("cleaning", "map_values")
def _map(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    out = {}
    for c in step.params.columns:
        dt = fr.need(sdf, c, step.label)
        if not isinstance(dt, (T.StringType, *fr.NUMERIC)):
            raise InputError(f"{step.label}: column {c!r} has type {dt.simpleString()}; expected a string or "
                             "numeric column on Spark")
        x, expr = fr.col(c), None
        for k, v in step.params.mapping.items():
            key = k if isinstance(dt, T.StringType) else _map_key(k, dt)
            if key is None:
                continue
            cond = x == F.lit(key)
            lit = fr.literal(v, dt, step.label, c)
            expr = F.when(cond, lit) if expr is None else expr.when(cond, lit)
        if expr is not None:
            out[c] = expr.otherwise(x)
    return out


_COERCE_TYPES = {"int": T.LongType(), "float": T.DoubleType(), "str": T.StringType(), "bool": T.BooleanType(),
                 "datetime": T.TimestampNTZType()}


def _datetime_format(step: Step, sdf: DataFrame, c: str, dt: T.DataType, rid: str) -> str | None:
    """pandas guesses one format from the first non-null value of the whole column; a pandas UDF
    would guess per Arrow batch. So the guess is made once here, from the first value in row-id
    order, and the UDF gets it explicitly ("mixed": no guess, each value parsed on its own, as pandas does)."""
    if step.params.datetime_format or not isinstance(dt, T.StringType):
        return step.params.datetime_format
    from pandas.tseries.api import guess_datetime_format

    first = sdf.where(fr.col(c).isNotNull()).orderBy(fr.col(rid)).select(fr.col(c)).first()
    if first is None:
        return None
    return guess_datetime_format(first[0]) or "mixed"


@implements("cleaning", "coerce_types")
def _coerce(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    """`category` keeps the column as it is: Spark has no categorical type and the values do not change."""
    out = {}
    for c, t in step.params.types.items():
        dt = fr.need(sdf, c, step.label)
        if t == "category":
            continue
        fmt = _datetime_format(step, sdf, c, dt, rid) if t == "datetime" else None
        local = type(step)(step.params.model_copy(update={"datetime_format": fmt}), step.index)
        new = fr.series_udf(lambda s, t=t, local=local: local.coerce_series(s, t), dt, _COERCE_TYPES[t])(fr.col(c))
        failed = sdf.where(~fr.is_na(c, dt) & new.isNull())
        step.record_failures(report, c, t, fr.sorted_ids(failed, rid))
        out[c] = new
    return out


@implements("cleaning", "drop_duplicates")
def _dedup(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> DataFrame:
    """Exact grouping (NaN and null are one missing value, as in pandas); the kept row is the
    lowest (`first`) or highest (`last`) row id of each group."""
    key = _need_columns(step, sdf, step.params.key, rid)
    order = fr.col(rid).asc() if step.params.keep == "first" else fr.col(rid).desc()
    w = Window.partitionBy(*[fr.na(k, fr.dtype_of(sdf, k)) for k in key]).orderBy(order)
    tag = "__privgov_dup_rank"
    return sdf.withColumn(tag, F.row_number().over(w)).where(F.col(tag) == 1).drop(tag)


@implements("cleaning", "drop_missing")
def _drop_missing(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> DataFrame:
    cols = _need_columns(step, sdf, step.params.columns, rid)
    miss = [fr.is_na(c, fr.dtype_of(sdf, c)) for c in cols]
    combine = (lambda a, b: a | b) if step.params.how == "any" else (lambda a, b: a & b)
    drop = miss[0]
    for m in miss[1:]:
        drop = combine(drop, m)
    return sdf.where(~drop)


@implements("cleaning", "impute")
def _impute(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    strat = step.params.strategy
    if strat == "constant" and step.params.value is None:
        raise InputError(f"{step.label}: strategy 'constant' needs key 'value'; expected e.g. value: 0")
    filled: dict[str, int] = {}
    out = {}
    for c in step.params.columns:
        dt = fr.need(sdf, c, step.label, "numeric" if strat in ("mean", "median") else None)
        n = int(sdf.where(fr.is_na(c, dt)).count())
        if strat in ("mean", "median"):
            s = fr.column_to_pandas(sdf, c, rid)
            fill: Any = s.mean() if strat == "mean" else s.median()
        elif strat == "mode":
            top = (sdf.where(~fr.is_na(c, dt)).groupBy(fr.na(c, dt).alias("v")).count()
                   .orderBy(F.col("count").desc(), F.col("v").asc()).first())
            fill = None if top is None else top["v"]
        else:
            fill = step.params.value
        if isinstance(fill, np.generic):
            fill = fill.item()
        if fill is None or (isinstance(fill, float) and np.isnan(fill)) or n == 0:
            filled[c] = 0
            continue
        x, out_dt = fr.na(c, dt), dt
        if isinstance(dt, fr.INTEGRAL) and isinstance(fill, float):
            if fill.is_integer():
                fill = int(fill)
            else:
                x, out_dt = x.cast("double"), T.DoubleType()
        out[c] = F.coalesce(x, fr.literal(fill, out_dt, step.label, c))
        filled[c] = n
    report.details["filled"] = filled
    return out


def _fences(step: Step, sdf: DataFrame, c: str, rid: str) -> tuple[T.DataType, float, float]:
    dt = fr.need(sdf, c, step.label, "numeric")
    lo, hi = pd_steps.outlier_bounds(fr.column_to_pandas(sdf, c, rid), step.params)
    return dt, float(lo), float(hi)


@implements("cleaning", "clip_outliers")
def _clip(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    out = {}
    for c in step.params.columns:
        dt, lo, hi = _fences(step, sdf, c, rid)
        if isinstance(dt, fr.INTEGRAL):
            lo, hi = float(np.ceil(lo)), float(np.floor(hi))
        x = fr.na(c, dt)
        expr = x
        if np.isfinite(lo):
            expr = F.when(x < F.lit(lo), F.lit(lo).cast(dt)).otherwise(expr)
        if np.isfinite(hi):
            expr = F.when(x > F.lit(hi), F.lit(hi).cast(dt)).otherwise(expr)
        out[c] = expr.cast(dt)
    return out


@implements("cleaning", "flag_outliers")
def _flag(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> DataFrame:
    flagged: dict[str, list[Any]] = {}
    for c in step.params.columns:
        dt, lo, hi = _fences(step, sdf, c, rid)
        v = fr.na(c, dt).cast("double")
        flag = F.coalesce((v < F.lit(lo)) | (v > F.lit(hi)), F.lit(False))
        sdf = sdf.withColumn(c + step.params.suffix, flag)
        flagged[c] = fr.sorted_ids(sdf.where(fr.col(c + step.params.suffix)), rid)
    report.details["flagged_row_ids"] = flagged
    return sdf


def _rescale(step: Step, sdf: DataFrame, report: StepReport, rid: str) -> dict[str, Column]:
    out = {}
    for c in step.params.columns:
        dt = fr.need(sdf, c, step.label, "numeric")
        center, scale = step.center_scale(fr.column_to_pandas(sdf, c, rid).astype("float64"))
        v = fr.na(c, dt).cast("double")
        out[c] = (v - F.lit(float(center))) / F.lit(float(scale)) if scale > 0 else v * F.lit(0.0)
    return out


implements("cleaning", "standardize")(_rescale)
implements("cleaning", "normalize")(_rescale)


# ---- runner -------------------------------------------------------------------------------------
def _replace(before: DataFrame, new: dict[str, Column]) -> tuple[DataFrame, int]:
    """Swap in the new columns (same position) and count changed cells in one Spark job."""
    if not new:
        return before, 0
    names = {c: f"__privgov_new_{j}" for j, c in enumerate(new)}
    staged = before.select("*", *[expr.alias(names[c]) for c, expr in new.items()])
    diffs = [fr.differs(fr.col(c), fr.dtype_of(before, c), F.col(names[c]), fr.dtype_of(staged, names[c]))
             for c in new]
    row = staged.agg(*[F.sum(d.cast("long")).alias(f"d{j}") for j, d in enumerate(diffs)]).first()
    changed = sum(int(v or 0) for v in row) if row is not None else 0
    out = staged.select(*[F.col(names[c]).alias(c) if c in names else fr.col(c) for c in before.columns])
    return out, changed


def apply_cleaning_spark(sdf: DataFrame, steps: list[Step], *, row_id_column: str = "row_id",
                         ) -> tuple[DataFrame, list[StepReport]]:
    """Run steps in order; return the cleaned frame and one report per step, as `apply_steps` does."""
    rid = row_id_column
    if rid not in sdf.columns:
        raise InputError(f"cleaning: data has no row id column {rid!r}; expected ingest to assign one")
    for step in steps:  # refuse before any work: a run never stops half-cleaned
        if step.name not in IMPLEMENTED["cleaning"]:
            reason = REFUSED["cleaning"].get(step.name, "no Spark implementation")
            raise InputError(f"{step.label}: not available with engine spark ({reason}); expected engine pandas")
    out, rows = sdf, fr.count_rows(sdf)
    reports: list[StepReport] = []
    for step in steps:
        rep = StepReport(index=step.index, step=step.name, params=step.params.model_dump(), rows_in=rows, rows_out=rows)
        res = IMPLEMENTED["cleaning"][step.name](step, out, rep, rid)
        if isinstance(res, dict):
            out, rep.values_changed = _replace(out, res)
        else:
            rep.rows_out = fr.count_rows(res)
            if rep.rows_out < rows:
                rep.dropped_row_ids = fr.sorted_ids(out.join(res.select(fr.col(rid)), on=rid, how="left_anti"), rid)
            out, rows = res, rep.rows_out
        reports.append(rep)
    return out, reports


def spark_coverage() -> list[str]:
    """Registered cleaning steps with neither a Spark implementation nor a documented refusal."""
    from governance.data.spark.registry import missing

    return missing("cleaning", list(step_classes()))
