"""The data stages of a governed run: ingest, validate, clean, quarantine, de-identify, store.

Each stage is a function of the frozen :class:`RunContext` and the previous
stage's record, and returns a typed record. Stages record counts, ids and
hashes in the audit log, never values; failing rows are named by row id.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from governance.data.splitting import SPLIT_COLUMN
from governance.run.context import RunContext
from governance.run.records import Cleaned, Deidentified, Ingested, Quarantined, Stored, Validation
from privacy.errors import InputError, QualityGateFailed


def _label(r: Any) -> str:
    return f"{r.type}({r.column})" if r.column else r.type


def blocking_ids(result: Any) -> set[Any]:
    """Rows failing an expectation that failed; rows tolerated by `mostly` stay."""
    ids: set[Any] = set()
    for r in result.failed:
        ids.update(r.failing_row_ids)
    return ids


def count(df: Any) -> int:
    """Rows of a pandas or Spark frame (the runner holds either, by `engine`)."""
    return int(len(df)) if isinstance(df, pd.DataFrame) else int(df.count())


def for_split(ctx: RunContext, df: Any) -> pd.DataFrame:
    """The frame the training split is planned on: itself, or on Spark the columns it needs."""
    if isinstance(df, pd.DataFrame):
        return df
    from governance.run.spark_stages import for_split as collect

    return collect(ctx, df)


def ingest(ctx: RunContext) -> Ingested:
    """Read the source (file, train/test pair, or the demo generator) with row ids."""
    from governance.data.ingest import read_table

    spec, src, rid = ctx.spec, ctx.spec.source, ctx.spec.row_id
    if src.sample:
        from governance.demo.sample_data import generate_clinic

        df = generate_clinic(src.rows, seed=src.seed)
        if rid not in df.columns:
            df.insert(0, rid, np.arange(len(df), dtype=np.int64))
    else:
        opts = src.csv.model_dump(exclude_none=True) if src.csv else None
        df = read_table(spec.resolve(src.path), row_id_column=rid, fmt=src.format, csv_options=opts)
        if src.test_path:
            test = read_table(spec.resolve(src.test_path), row_id_column=rid, fmt=src.format, csv_options=opts)
            test[rid] = test[rid] + (int(df[rid].max()) + 1 if len(df) else 0)
            df[SPLIT_COLUMN] = "train"
            test[SPLIT_COLUMN] = "test"
            df = pd.concat([df, test], ignore_index=True)
    if ctx.unit_column and ctx.unit_column not in df.columns:
        raise InputError(f"pipeline `{spec.name}`: the privacy unit `{ctx.unit_column}` bound to dataset "
                         f"`{ctx.dataset.name}` is not a column of the data")
    ctx.record("ingest", purpose=spec.ingest_purpose, details={"rows": int(len(df)), "columns": int(df.shape[1])})
    return Ingested(frame=df, rows=int(len(df)), columns=int(df.shape[1]))


def validate(ctx: RunContext, df: pd.DataFrame, stage: str) -> Validation:
    """Run the suite; the result (row ids, never values) is kept as evidence."""
    from governance.data.quality import load_suite, validate as run_suite

    spec = ctx.spec
    suite = load_suite(spec.resolve(spec.quality.suite))
    if spec.engine == "spark":  # df is a Spark DataFrame: GX's Spark engine, the same result type
        from governance.data.spark.validate import validate_spark

        result = validate_spark(df, suite, row_id_column=spec.row_id)
    else:
        result = run_suite(df, suite, row_id_column=spec.row_id, engine=spec.quality.engine)
    return record_validation(ctx, suite, result, stage)


def record_validation(ctx: RunContext, suite: dict[str, Any], result: Any, stage: str) -> Validation:
    """Keep a suite's result as evidence and audit it; shared by the in-memory and streaming runs."""
    from governance.storage.store import ValidationRecord

    spec = ctx.spec
    failing = len(blocking_ids(result))
    with ctx.ws.session() as s:
        rec = ValidationRecord(
            dataset_name=spec.dataset, stage=stage, suite_name=str(suite.get("name", "suite")),
            success=bool(result.success), evaluated=len(result.results),
            failed_expectations=sum(1 for r in result.results if not r.success), failing_rows=failing,
            result_json={**result.to_dict(), "suite_sha256": suite_sha256(suite)},
        )
        s.add(rec)
        s.flush()
        record_id = int(rec.id)
    ctx.record("validate", purpose=spec.ingest_purpose,
               details={"stage": stage, "success": bool(result.success), "failing_rows": failing,
                        "errors": len(result.errors)})
    if result.errors:  # could not run: neither pass nor fail, so the run stops (exit 2)
        raise InputError(f"suite {spec.quality.suite}: " + "; ".join(
            f"expectations[{r.index}] ({r.type}) could not run ({r.error})" for r in result.errors[:3])
            + "; expected every expectation to run")
    return Validation(stage=stage, result=result, failing_rows=failing, record_id=record_id)


def suite_sha256(suite: dict[str, Any]) -> str:
    """The hash of the suite as it was applied (canonical JSON), so the report names the exact rules."""
    return hashlib.sha256(json.dumps(suite, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def clean(ctx: RunContext, df: pd.DataFrame) -> Cleaned:
    from governance.data.cleaning import apply_steps, build_steps

    apply = apply_steps
    if ctx.spec.engine == "spark":
        from governance.data.spark.steps import apply_cleaning_spark as apply
    cleaned, reports = apply(df, build_steps(ctx.spec.cleaning), row_id_column=ctx.spec.row_id)
    return Cleaned(frame=cleaned, steps=[r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in reports])


def quarantine(ctx: RunContext, df: pd.DataFrame, validation: Validation) -> Quarantined:
    """Split off rows that still fail after cleaning (by row id), or stop the run."""
    blocking = blocking_ids(validation.result)
    if not blocking:
        return Quarantined(kept=df, quarantine=None, rows=0, reasons={})
    if ctx.spec.engine == "spark":
        from governance.run.spark_stages import split_rows
    else:
        split_rows = _split_rows
    share = len(blocking) / max(validation.result.row_count, 1)
    check_quarantine_share(ctx, len(blocking), share)
    kept, held = split_rows(ctx, df, blocking)
    held["quarantine_reason"] = held[ctx.spec.row_id].map(_reasons(validation))
    reasons = {_label(r): int(r.unexpected_count) for r in validation.result.failed}
    return Quarantined(kept=kept, quarantine=held, rows=int(len(held)), reasons=reasons)


def check_quarantine_share(ctx: RunContext, rows: int, share: float) -> None:
    """The gate: `on_failure: fail` stops at any failing row, quarantine stops above the share."""
    q = ctx.spec.quality
    if q.on_failure == "fail":
        raise QualityGateFailed(f"suite {q.suite}: {rows} rows still fail after cleaning")
    if share > q.max_quarantine_share:
        raise QualityGateFailed(
            f"suite {q.suite}: {share:.1%} of rows fail after cleaning (more than "
            f"max_quarantine_share {q.max_quarantine_share:.0%}); fix the source or the cleaning steps")


def _split_rows(ctx: RunContext, df: pd.DataFrame, blocking: set[Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    mask = df[ctx.spec.row_id].isin(blocking)
    return df[~mask].reset_index(drop=True), df[mask].copy()


def _reasons(validation: Validation) -> Any:
    """Row id -> the failed expectations naming it (labels only, never values)."""
    by_row: dict[Any, list[str]] = {}
    for r in validation.result.failed:
        for rid in r.failing_row_ids:
            by_row.setdefault(rid, []).append(_label(r))
    return lambda rid: "; ".join(by_row.get(rid, ["failed validation"]))


def deidentify(ctx: RunContext, df: pd.DataFrame) -> Deidentified:
    """Declared drop / pseudonymize / generalize steps; k-anonymity gate with opt-in suppression."""
    from privacy.deid import apply_deid, enforce_no_direct_identifiers, require_k

    if ctx.spec.engine == "spark":
        from governance.run.spark_stages import deidentify as deidentify_spark

        return deidentify_spark(ctx, df)
    d, rid = ctx.spec.deid, ctx.spec.row_id
    out, report = apply_deid(df, d.steps, key_for_domain=ctx.ws.keyring.pseudonym_keys(ctx.dataset.name))
    transformed = {r["column"] for r in report if r.get("action") in ("drop", "pseudonymize")}
    enforce_no_direct_identifiers(out, d.direct_identifiers, transformed=transformed)
    k = None
    if d.require_k and d.quasi_identifiers:
        if d.suppress_below_k:
            sizes = out.groupby(d.quasi_identifiers, dropna=False)[rid].transform("size")
            small = sizes < d.require_k
            report.append({"step": "suppress_below_k", "column": ",".join(d.quasi_identifiers),
                           "action": "suppress_rows", "k": d.require_k, "rows_suppressed": int(small.sum()),
                           "suppressed_row_ids": [int(x) for x in out.loc[small, rid]]})
            out = out[~small].reset_index(drop=True)
        k = int(require_k(out, d.quasi_identifiers, d.require_k).k)
    return Deidentified(frame=out, steps=[{"stage": "deid", **r} for r in report], k_anonymity=k)


def store(ctx: RunContext, df: pd.DataFrame, held: Quarantined, steps: list[dict[str, Any]],
          meta: dict[str, Any], clean_success: bool | None, validation_ids: list[int] | None = None,
          like: dict[str, Any] | None = None, write: Any = None) -> Stored:
    """Encrypt the de-identified frame (and the quarantine) as new versions, in one transaction.

    `write` replaces `catalog.write_version` (same signature): the streaming run passes a writer that
    produces both versions batch by batch (governance/run/streaming_stages.py). `like` is the ingested
    frame a Spark run casts its timestamp columns back to."""
    from governance.storage import catalog
    from governance.storage.store import Dataset, Run, ValidationRecord

    spec = ctx.spec
    with ctx.ws.session() as s:
        ds = s.get(Dataset, ctx.dataset.id)
        if ds.row_id_column != spec.row_id and not catalog.versions_of(s, ds):
            ds.row_id_column = spec.row_id
        status = "passed" if clean_success in (True, None) or held.quarantine is not None else "failed"
        put = write or catalog.write_version
        if spec.engine == "spark":  # encrypted Parquet partitions, sealed on the executors
            from governance.run.spark_stages import write_version

            row = write_version(ctx.ws, s, ds, df, like=like, kind="data", steps=steps, meta=meta,
                                validation_status=status)
        else:
            row = put(ctx.ws, s, ds, df, kind="data", steps=steps, meta=meta, validation_status=status)
        if validation_ids:
            s.query(ValidationRecord).filter(ValidationRecord.id.in_(list(validation_ids))).update(
                {"version_id": row.id}, synchronize_session=False)
        s.query(Run).filter(Run.run_uid == ctx.run_uid).update({"version_id": row.id})
        qver = None
        if held.quarantine is not None and len(held.quarantine):
            q = put(ctx.ws, s, ds, held.quarantine, kind="quarantine", parent_id=row.id,
                    meta={"reasons": held.reasons, "run_uid": ctx.run_uid}, validation_status="failed")
            qver = q.version
        stored = Stored(version=row.version, version_id=row.id, row_count=int(row.row_count),
                        content_hash=row.content_hash, meta=dict(meta), quarantine_version=qver)
        ctx.ws.audit.record(s, principal=ctx.identity.name, action="store", decision="info", resource=spec.dataset,
                            version=row.version, purpose=spec.ingest_purpose,
                            details={"rows": stored.row_count, "content_hash": row.content_hash,
                                     "data_key_id": int(row.data_key_id or 0), "quarantined_rows": held.rows})
    return stored
