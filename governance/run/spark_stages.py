"""The parts of a governed run that differ when `engine: spark`.

Why only these: ingest and the PII gate run as on pandas (the same reader and
row ids, on the driver); the frame then becomes a Spark DataFrame and stays one
through validation, cleaning, quarantine, de-identification and storage. What
leaves Spark for the driver is small and public-by-construction: failing row
ids, the quarantined rows (bounded by `max_quarantine_share`, stored encrypted),
the k-anonymity class sizes (never their values), the row id / unit / split
columns for the training plan. PySpark is imported here only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.run.context import RunContext
from governance.run.records import Deidentified

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pyspark.sql import DataFrame


def session(ctx: RunContext) -> Any:
    from governance.data.spark.session import spark_session

    return spark_session(ctx.spec.spark_master)


def to_spark(ctx: RunContext, df: "pd.DataFrame") -> "DataFrame":
    """The ingested frame as a Spark DataFrame (Arrow transfer on the driver)."""
    from governance.data.spark.validate import to_spark as convert

    return convert(session(ctx), df)


def split_rows(ctx: RunContext, sdf: "DataFrame", blocking: set[Any]) -> tuple["DataFrame", "pd.DataFrame"]:
    """(kept rows, quarantined rows collected to the driver), by row id through a join, not a literal list."""
    from pyspark.sql import types as T

    rid = ctx.spec.row_id
    ids = session(ctx).createDataFrame([(i,) for i in sorted(blocking)],
                                       T.StructType([T.StructField(rid, sdf.schema[rid].dataType)]))
    held = sdf.join(ids, on=rid, how="left_semi").toPandas()
    return sdf.join(ids, on=rid, how="left_anti"), held.sort_values(rid).reset_index(drop=True)


def deidentify(ctx: RunContext, sdf: "DataFrame") -> Deidentified:
    """Declared steps as Spark expressions; the identifier check and k-anonymity gate as on pandas."""
    from governance.data.spark.deid import apply_deid_spark
    from governance.data.spark.kanon import require_k_spark, suppress_below_k_spark
    from privacy.deid import enforce_no_direct_identifiers

    d, rid = ctx.spec.deid, ctx.spec.row_id
    out, report = apply_deid_spark(sdf, d.steps, key_for_domain=ctx.ws.keyring.pseudonym_keys(ctx.dataset.name))
    transformed = {r["column"] for r in report if r.get("action") in ("drop", "pseudonymize")}
    enforce_no_direct_identifiers(out.limit(0).toPandas(), d.direct_identifiers, transformed=transformed)
    k = None
    if d.require_k and d.quasi_identifiers:
        if d.suppress_below_k:
            out, entry = suppress_below_k_spark(out, d.quasi_identifiers, d.require_k, rid)
            report.append(entry)
        k = int(require_k_spark(out, d.quasi_identifiers, d.require_k).k)
    return Deidentified(frame=out, steps=[{"stage": "deid", **r} for r in report], k_anonymity=k)


def for_split(ctx: RunContext, sdf: "DataFrame") -> "pd.DataFrame":
    """The columns the training split needs (row id, unit, split marker), collected to the driver."""
    from governance.data.splitting import SPLIT_COLUMN

    cols = [c for c in dict.fromkeys([ctx.spec.row_id, ctx.unit_column, SPLIT_COLUMN]) if c and c in sdf.columns]
    return sdf.select(*cols).toPandas()


def write_version(ws: Any, session_: Any, dataset: Any, sdf: "DataFrame", **kwargs: Any) -> Any:
    """The stored version: encrypted partitions sealed on the executors (`governance.data.spark.store`)."""
    from governance.data.spark import store

    return store.write_version(ws, session_, dataset, sdf, **kwargs)
