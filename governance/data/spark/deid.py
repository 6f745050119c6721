"""De-identification steps on Spark: the same specs (`privacy.deid.transforms`), the same report.

`apply_deid_spark(sdf, specs, key_for_domain)` returns the new Spark frame and the per-step
report `apply_deid` returns for the same data (counts only, never values).

Why pandas UDFs for every value transform: pseudonyms must be bit-identical to the pandas
path (same key, domain prefix, normalisation, canonical text of numbers and timestamps), so the
UDF calls `privacy.deid.pseudonymize` itself rather than a second HMAC in Spark SQL; likewise
`generalize` (age bands, ZIP prefixes with the HIPAA list, pandas' date parsing, numpy
rounding, which rounds half to even where Spark's `round` rounds half up) and `redact` (the
span detectors are Python). `drop`, `keep` and `suppress_rare` are plain Spark: the rare
categories are found by an exact `groupBy().count()`, not a sketch.

The pseudonym key reaches the Python workers inside the serialized UDF: on a cluster, run Spark
with `spark.authenticate` and `spark.network.crypto.enabled` so it never crosses the wire in clear.
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from governance.data.spark import frame as fr
from governance.data.spark.registry import IMPLEMENTED, REFUSED, deid_key, implements, missing
from governance.errors import InputError
from privacy.deid import transforms as tf
from privacy.deid.redact import redact

__all__ = ["apply_deid_spark", "spark_coverage", "DEID_KEYS"]

# every action and generalize method `parse_step` accepts, named as `deid_key` names them
DEID_KEYS = [a for a in tf._ACTIONS] + [f"generalize:{m}" for m in tf._METHODS]


def _key(i: int, domain: str, key_for_domain: Callable[[str], bytes]) -> bytes:
    """The same refusals as `apply_deid`: a callback error is not ours to leak, a short key is refused."""
    try:
        key = key_for_domain(domain)
    except Exception as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"deid spec #{i}: no pseudonym key for domain {domain!r} ({type(exc).__name__})") from None
    if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
        raise InputError(f"deid spec #{i}: key for domain {domain!r} must be at least 16 bytes")
    return bytes(key)


@implements("deid", "pseudonymize")
def _pseudonymize(i: int, spec: Any, sdf: DataFrame, dt: T.DataType, keys: Callable[[str], bytes],
                  entry: dict[str, Any]) -> Column:
    domain = spec.domain or spec.column
    key = _key(i, domain, keys)
    length, norm = spec.length, spec.normalize
    entry.update(domain=domain, length=spec.length)
    fn = (lambda s: tf.pseudonymize(s, key, domain=domain, length=length, normalize=norm))
    return fr.series_udf(fn, dt, T.StringType())(fr.col(spec.column))


@implements("deid", "redact")
def _redact(i: int, spec: Any, sdf: DataFrame, dt: T.DataType, keys: Callable[[str], bytes],
            entry: dict[str, Any]) -> Column:
    """Returns a struct (text, spans): `redact` counts spans per batch, so each batch's total rides
    on its first row and the report sums them."""
    domain = spec.domain or spec.column
    key = _key(i, domain, keys) if spec.mode == "pseudonym" else None
    mode, types, length = spec.mode, spec.types, spec.length

    def run(s: pd.Series) -> pd.DataFrame:
        out, n = redact(fr.as_pandas_input(s, dt), mode=mode, types=types, key=key, domain=domain, length=length)
        spans = [0] * len(s)
        if spans:
            spans[0] = n
        return pd.DataFrame({"text": out.astype(object).where(out.notna(), None), "spans": spans})

    entry.update(mode=spec.mode)
    return F.pandas_udf(run, "text string, spans long")(fr.col(spec.column))  # type: ignore[call-overload]


def _generalize_type(spec: Any, dt: T.DataType) -> T.DataType:
    """`round` keeps an integer column's type when rounding to whole numbers (as `_round` does)."""
    if not isinstance(spec, tf.RoundSpec):
        return T.StringType()
    whole = (spec.base is not None and float(spec.base).is_integer()) or (spec.base is None and spec.ndigits <= 0)
    return dt if whole and isinstance(dt, fr.INTEGRAL) else T.DoubleType()


def _generalize(i: int, spec: Any, sdf: DataFrame, dt: T.DataType, keys: Callable[[str], bytes],
                entry: dict[str, Any]) -> Column:
    params = {k: v for k, v in spec.model_dump().items() if k not in ("column", "action", "method")}
    method = spec.method
    entry["method"] = method
    entry.update({k: v for k, v in params.items() if v is not None})
    fn = (lambda s: tf.generalize(s, method, **params))
    return fr.series_udf(fn, dt, _generalize_type(spec, dt))(fr.col(spec.column))


for _m in ("age_band", "zip_prefix", "date_truncate", "round"):
    implements("deid", f"generalize:{_m}")(_generalize)


@implements("deid", "suppress_rare")
def _suppress(i: int, spec: Any, sdf: DataFrame, dt: T.DataType, keys: Callable[[str], bytes],
              entry: dict[str, Any]) -> Column:
    """Exact counts; only string columns: on other types pandas mixes the numbers with the
    `other` text in one object column, which a typed Spark column cannot hold."""
    c = spec.column
    counts = sdf.where(fr.col(c).isNotNull()).groupBy(fr.col(c).alias("v")).count()
    rare = [r["v"] for r in counts.where(F.col("count") < spec.k).select("v").collect()]
    entry.update(k=spec.k, categories_suppressed=len(rare))
    if not rare:
        return fr.col(c)
    if not isinstance(dt, T.StringType):
        raise InputError(f"deid spec #{i}: suppress_rare on column {c!r} of type {dt.simpleString()} is not "
                         "available with engine spark; expected a string column")
    return F.when(fr.col(c).isin(rare), F.lit(spec.other)).otherwise(fr.col(c))


@implements("deid", "drop")
def _drop(*_: Any) -> None:
    return None


@implements("deid", "keep")
def _keep(*_: Any) -> None:
    return None


# ---- runner -------------------------------------------------------------------------------------
def _step(i: int, spec: Any, sdf: DataFrame, keys: Callable[[str], bytes], entry: dict[str, Any]) -> DataFrame:
    col = spec.column
    dt = fr.dtype_of(sdf, col)
    if spec.action in ("drop", "keep"):
        nulls = int(sdf.where(fr.is_na(col, dt)).count())
        if spec.action == "drop":
            entry["nulls_before"] = nulls
            return sdf.drop(col)
        entry.update(nulls=nulls, changed=0)
        return sdf
    expr = IMPLEMENTED["deid"][deid_key(spec)](i, spec, sdf, dt, keys, entry)
    tmp, pair = "__privgov_deid_new", "__privgov_deid_struct"
    spans = None
    if isinstance(spec, tf.RedactSpec):
        staged = sdf.select("*", expr.alias(pair)).withColumn(tmp, F.col(pair)["text"])
        spans = F.sum(F.col(pair)["spans"])
    else:
        staged = sdf.select("*", expr.alias(tmp))
    new_dt = fr.dtype_of(staged, tmp)
    before, after = fr.na(col, dt), fr.na(tmp, new_dt)
    aggs = [F.sum(after.isNull().cast("long")).alias("nulls"),
            F.sum(fr.differs(fr.col(col), dt, F.col(tmp), new_dt).cast("long")).alias("changed"),
            F.count_distinct(before).alias("db"), F.count_distinct(after).alias("da"),
            F.sum((after.isNull() & before.isNotNull()).cast("long")).alias("bn")]
    if spans is not None:
        aggs.append(spans.alias("spans"))
    row = staged.agg(*aggs).first()
    assert row is not None
    changed = int(row["changed"] or 0)
    if isinstance(spec, tf.RedactSpec):
        entry["spans_replaced"] = int(row["spans"] or 0)
    elif isinstance(spec, tf.SuppressRareSpec):
        entry["rows_suppressed"] = changed
    elif spec.action == "generalize":
        entry["became_null"] = int(row["bn"] or 0)
    entry.update(nulls=int(row["nulls"] or 0), changed=changed, distinct_before=int(row["db"]),
                 distinct_after=int(row["da"]))
    return staged.select(*[F.col(tmp).alias(c) if c == col else fr.col(c) for c in sdf.columns])


def apply_deid_spark(sdf: DataFrame, specs: list[dict[str, Any]], key_for_domain: Callable[[str], bytes],
                     ) -> tuple[DataFrame, list[dict[str, Any]]]:
    """Run the spec steps in order; return (new frame, per-step report) as `apply_deid` does."""
    parsed = tf.parse_specs(specs)
    for i, spec in enumerate(parsed):  # refuse before any work
        if deid_key(spec) not in IMPLEMENTED["deid"]:
            reason = REFUSED["deid"].get(deid_key(spec), "no Spark implementation")
            raise InputError(f"deid spec #{i}: {deid_key(spec)} is not available with engine spark ({reason})")
    rows = fr.count_rows(sdf)
    out = sdf
    report: list[dict[str, Any]] = []
    for i, spec in enumerate(parsed):
        if spec.column not in out.columns:
            dropped = any(r["column"] == spec.column and r["action"] == "drop" for r in report)
            raise InputError(f"deid spec #{i}: column {spec.column!r} is not in the data"
                             + (" (dropped by an earlier step)" if dropped else ""))
        entry: dict[str, Any] = {"step": i, "column": spec.column, "action": spec.action, "rows": rows}
        out = _step(i, spec, out, key_for_domain, entry)
        report.append(entry)
    return out, report


def spark_coverage() -> list[str]:
    """De-identification actions/methods with neither a Spark implementation nor a documented refusal."""
    return missing("deid", DEID_KEYS)
