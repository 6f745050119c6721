"""The data stages of a governed run over a file read in batches (`privgov run --batch-rows N`).

Why: the in-memory stages (governance/run/stages.py) hold the whole table several times over;
here no stage holds more than a few batches, so peak memory does not grow with the file. The
file is read several times instead (Parquet and CSV are re-readable; nothing is spilled):

1. ingest: row count (Parquet metadata / the CSV typing pass);
2. PII gate: a bounded sample (governance/data/pii_stream.py);
3. raw validation: the batch validator (governance/data/quality/batches.py);
4. cleaning statistics: one pass per step that needs one (governance/data/cleaning/streaming.py);
5. revalidation: clean each batch, validate it; the failing row ids decide the quarantine;
6. store: clean each batch again, split off quarantined ids, de-identify, and push the rows into a
   Parquet writer whose bytes are encrypted as they are produced (governance/storage/blob_writer.py).

The stored version holds the same rows and values (same pseudonyms) as the in-memory run.
State that grows: failing row ids (8 bytes per failing row and expectation; bounded by
`max_quarantine_share`), drop_duplicates' rows to drop (8 bytes per dropped duplicate), one count per
quasi-identifier combination for `require_k`. The privacy units of the stored version and the
values of uniqueness expectations are counted exactly through a
:class:`~governance.data.key_spill.KeySpill` (about 1M keys in memory, the rest partitioned on
disk under the workspace's object directory, keyed hashes only, removed at the end), so neither
grows memory with the file. Refused here, with a message: training (it reads the stored
version into memory anyway: run it from the stored version), a `test_path` pair, the `sample`
generator, the GX engine, `suppress_rare` and `suppress_below_k` (both need global counts
before the first row is written).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from governance.data.key_spill import KeySpill
from governance.data.streaming import BatchSource, open_batches
from governance.run import pii_gate, stages
from governance.run.context import RunContext
from governance.run.records import Quarantined, RunSummary
from privacy.errors import InputError, QualityGateFailed


def _refuse(ctx: RunContext) -> None:
    spec = ctx.spec
    why = None
    if spec.engine == "spark":
        why = "`engine: spark` partitions the data itself (docs/spark.md)"
    elif spec.training:
        why = "training is not streamed (it reads the stored version into memory)"
    elif spec.source.sample:
        why = "the `sample` generator builds its rows in memory"
    elif spec.source.test_path:
        why = "a `test_path` pair is read in memory"
    elif spec.quality and spec.quality.engine != "fast":
        why = "only the `fast` validation engine merges batches"
    elif spec.deid.suppress_below_k:
        why = "`suppress_below_k` needs every group's size before the first row is stored"
    elif any(str(s.get("action")) == "suppress_rare" for s in spec.deid.steps):
        why = "`suppress_rare` needs every category's count before the first row is stored"
    if why:
        raise InputError(f"pipeline `{spec.name}`: cannot stream (--batch-rows / batch_rows): {why}; "
                         "expected a streamable pipeline (see docs/streaming.md), or run it in memory (--batch-rows 0)")


class StreamWriter:
    """`write` for :func:`governance.run.stages.store`: the data version is written by one pass that
    also writes the quarantine version, each to its own encrypted blob, inside the store's transaction."""

    def __init__(self, ctx: RunContext, source: BatchSource, clean: Callable[[pd.DataFrame], pd.DataFrame],
                 blocking: np.ndarray, reasons: list[tuple[str, np.ndarray]]) -> None:
        self.ctx, self.source, self.clean = ctx, source, clean
        self.blocking = blocking
        self.reasons = reasons
        self.deid_steps: list[dict[str, Any]] = []
        self.k_anonymity: int | None = None
        self._quarantine: tuple[int, Any, int, list[dict[str, str]]] | None = None
        self.rows = 0
        key_for = ctx.ws.keyring.pseudonym_keys(ctx.dataset.name)
        self._keys: dict[str, bytes] = {}
        # resolve the pseudonym keys now: inside the store's transaction a second session could not create them
        from privacy.deid.transforms import PseudonymizeSpec, RedactSpec, parse_specs

        for spec in parse_specs(ctx.spec.deid.steps):
            if isinstance(spec, PseudonymizeSpec) or (isinstance(spec, RedactSpec) and spec.mode == "pseudonym"):
                domain = spec.domain or spec.column
                self._keys[domain] = key_for(domain)
        self._key_for = lambda d: self._keys[d] if d in self._keys else key_for(d)

    def __call__(self, ws: Any, session: Any, ds: Any, frame: Any, *, kind: str, parent_id: int | None = None,
                 steps: list[dict[str, Any]] | None = None, meta: dict[str, Any] | None = None,
                 validation_status: str = "unvalidated") -> Any:
        from governance.storage import catalog

        if kind == "data":
            number = catalog.next_version(session, ds)
            ref, rows, units, schema = self._write_pass(ws, session, ds, number)
            return catalog.record_version(session, ds, number, ref, kind="data", row_count=rows, unit_count=units,
                                          schema=schema, parent_id=parent_id, steps=[*(steps or []), *self.deid_steps],
                                          meta=meta, validation_status=validation_status)
        assert self._quarantine is not None, "the data version is written first"
        number, ref, rows, schema = self._quarantine
        if catalog.next_version(session, ds) != number:
            raise InputError(f"dataset `{ds.name}`: version {number} was taken during the run; run it again")
        return catalog.record_version(session, ds, number, ref, kind="quarantine", row_count=rows, unit_count=None,
                                      schema=schema, parent_id=parent_id, steps=steps, meta=meta,
                                      validation_status=validation_status)

    def _write_pass(self, ws: Any, session: Any, ds: Any, number: int) -> tuple[Any, int, int | None, list]:
        from contextlib import ExitStack

        from governance.storage.aad import dataset_version as associated_data
        from governance.storage.blob_writer import open_blob

        rid, unit = self.ctx.spec.row_id, ds.privacy_unit
        with ExitStack() as stack:
            data = _ParquetOut(stack.enter_context(open_blob(ws.objects, session,
                                                              associated=associated_data(ds.name, number, "data"))))
            held = None
            if len(self.blocking):
                held = _ParquetOut(stack.enter_context(open_blob(
                    ws.objects, session, associated=associated_data(ds.name, number + 1, "quarantine"))))
            units = stack.enter_context(KeySpill(directory=ws.objects.dir))
            groups: pd.Series | None = None
            for batch in self.source:
                cleaned = self.clean(batch)
                mask = np.isin(cleaned[rid].to_numpy(), self.blocking) if held is not None else None
                if held is not None and mask is not None and mask.any():
                    q = cleaned[mask].copy()
                    q["quarantine_reason"] = self._reasons_for(q[rid].to_numpy())
                    held.write(q.reset_index(drop=True))
                    cleaned = cleaned[~mask]
                out = self._deid(cleaned.reset_index(drop=True))
                data.write(out)
                if unit and unit in out.columns:
                    units.add(units.hash(out[unit].dropna()))
                groups = self._count_groups(out, groups)
            self._check_k(groups)
            unit_count = units.distinct() if unit and unit in data.columns else None
            data.close()
            if held is not None:
                held.close()
        assert data.sink.ref is not None
        if held is not None:
            assert held.sink.ref is not None
            self._quarantine = (number + 1, held.sink.ref, held.rows, held.schema)
        self.rows = data.rows
        return data.sink.ref, data.rows, unit_count, data.schema

    def _reasons_for(self, ids: np.ndarray) -> np.ndarray:
        """`quarantine_reason` for these quarantined ids: the labels of the expectations each failed."""
        labels = [[] for _ in range(len(ids))]
        for label, failing in self.reasons:
            for j in np.flatnonzero(np.isin(ids, failing)):
                labels[j].append(label)
        return np.array(["; ".join(x) if x else "failed validation" for x in labels], dtype=object)

    def _deid(self, df: pd.DataFrame) -> pd.DataFrame:
        from privacy.deid import apply_deid, enforce_no_direct_identifiers

        d = self.ctx.spec.deid
        out, report = apply_deid(df, d.steps, key_for_domain=self._key_for, distinct_counts=False)
        transformed = {r["column"] for r in report if r.get("action") in ("drop", "pseudonymize")}
        enforce_no_direct_identifiers(out, d.direct_identifiers, transformed=transformed)
        if not self.deid_steps:
            self.deid_steps = [{"stage": "deid", **r, "streamed": True} for r in report]
        else:
            from governance.data.cleaning.streaming import _merge

            for mine, r in zip(self.deid_steps, report):
                for k, v in r.items():
                    if k in ("rows", "nulls", "nulls_before", "changed", "became_null", "spans_replaced"):
                        mine[k] = _merge(mine.get(k, 0), v)
        return out

    def _count_groups(self, out: pd.DataFrame, groups: pd.Series | None) -> pd.Series | None:
        d = self.ctx.spec.deid
        if not (d.require_k and d.quasi_identifiers):
            return groups
        missing = [c for c in d.quasi_identifiers if c not in out.columns]
        if missing:
            raise InputError(f"k-anonymity: quasi-identifier column(s) {missing} are not in the data")
        part = out.groupby(list(d.quasi_identifiers), dropna=False, sort=False, observed=True).size()
        return part if groups is None else groups.add(part, fill_value=0)

    def _check_k(self, groups: pd.Series | None) -> None:
        d = self.ctx.spec.deid
        if groups is None or not d.require_k:
            return
        below = groups[groups < d.require_k]
        self.k_anonymity = int(groups.min()) if len(groups) else 0
        if len(below):
            sizes = ", ".join(str(int(x)) for x in sorted(below.to_numpy())[:10])
            raise InputError(
                f"k-anonymity: {len(below)} equivalence class(es) over ({', '.join(d.quasi_identifiers)}) have "
                f"fewer than k={d.require_k} rows (sizes {sizes}; {below.sum() / max(1, groups.sum()):.2%} of rows); "
                "generalize or suppress first")


class _ParquetOut:
    """A Parquet writer over an encrypted sink; the first batch fixes the schema, later ones are cast to it."""

    def __init__(self, sink: Any) -> None:
        self.sink, self.writer, self.rows = sink, None, 0
        self.schema: list[dict[str, str]] = []
        self.columns: list[str] = []
        self._last: pd.DataFrame | None = None

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from governance.storage.catalog import schema_of

        self._last = df.iloc[:0]
        if not len(df):
            return
        if self.writer is None:
            table = pa.Table.from_pandas(df, preserve_index=False)
            self.writer = pq.ParquetWriter(self.sink, table.schema)
            self.schema, self.columns = schema_of(df), [str(c) for c in df.columns]
        else:
            try:
                table = pa.Table.from_pandas(df, schema=self.writer.schema, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
                raise InputError(f"streamed batch rows {self.rows}..: column types differ from the first batch "
                                 f"({type(exc).__name__}); expected one type per column across the file") from None
        self.writer.write_table(table)
        self.rows += len(df)

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from governance.storage.catalog import schema_of

        if self.writer is None:  # no rows: an empty Parquet file with the columns
            empty = self._last if self._last is not None else pd.DataFrame()
            self.writer = pq.ParquetWriter(self.sink, pa.Table.from_pandas(empty, preserve_index=False).schema)
            self.schema, self.columns = schema_of(empty), [str(c) for c in empty.columns]
        self.writer.close()


def run_streaming(ctx: RunContext, summary: RunSummary, timed: Any, batch_rows: int) -> None:
    """The data half of `runner._body` over batches; see the module docstring."""
    from governance.data.cleaning.streaming import StreamCleaner
    from governance.data.pii_stream import scan_batches
    from governance.data.quality import load_suite
    from governance.data.quality.batches import BatchValidator, check_mergeable

    _refuse(ctx)
    spec, rid = ctx.spec, ctx.spec.row_id
    source = open_batches(spec.resolve(spec.source.path), batch_rows, row_id_column=rid, fmt=spec.source.format,
                          csv_options=spec.source.csv, spill_dir=ctx.ws.objects.dir)
    suite = None
    if spec.quality:  # refuse a non-mergeable suite before reading any data
        suite = load_suite(spec.resolve(spec.quality.suite))
        check_mergeable(suite)
    cleaner = StreamCleaner(spec.cleaning, row_id_column=rid, spill_dir=ctx.ws.objects.dir)

    def ingest() -> list[str]:
        rows, columns = source.count(), source.columns
        if ctx.unit_column and ctx.unit_column not in columns:
            raise InputError(f"pipeline `{spec.name}`: the privacy unit `{ctx.unit_column}` bound to dataset "
                             f"`{ctx.dataset.name}` is not a column of the data")
        ctx.record("ingest", purpose=spec.ingest_purpose,
                   details={"rows": int(rows), "columns": len(columns), "batch_rows": int(batch_rows)})
        summary.rows_ingested = int(rows)
        return columns

    columns = timed("ingest", ingest)
    timed("pii_gate", lambda: pii_gate.run_gate(ctx, pd.DataFrame(columns=columns), sink=summary.pii_findings,
                                                 records=scan_batches(source)))
    validation_ids: list[int] = []

    def validate(stage: str, transform: Callable[[pd.DataFrame], pd.DataFrame] | None) -> Any:
        v = BatchValidator(suite, row_id_column=rid, spill_dir=ctx.ws.objects.dir)
        try:
            if transform is not None:
                cleaner.start()
            for batch in source:
                v.add(transform(batch) if transform is not None else batch)
        finally:
            v.close()  # a failed pass leaves no spilled keys behind (result() closes it too)
        rec = stages.record_validation(ctx, v.suite, v.result(str(source.path)), stage)
        validation_ids.append(rec.record_id)
        return rec

    if spec.quality:
        summary.raw_validation_success = timed("validate", lambda: validate("raw", None)).success
    if spec.cleaning:
        timed("clean", lambda: cleaner.fit(source))
    held = Quarantined(kept=None, quarantine=None, rows=0, reasons={})
    blocking = np.empty(0, dtype=np.int64)
    reasons_by_label: list[tuple[str, np.ndarray]] = []
    if spec.quality:
        revalidated = timed("revalidate", lambda: validate("cleaned", cleaner.apply))
        summary.clean_validation_success = revalidated.success
        blocking = _sorted_ids(stages.blocking_ids(revalidated.result))
        if len(blocking):
            rows_cleaned = cleaner.reports[-1].rows_out if cleaner.reports else summary.rows_ingested
            if spec.quality.on_failure == "fail":
                raise QualityGateFailed(f"suite {spec.quality.suite}: {len(blocking)} rows still fail after cleaning")
            share = len(blocking) / max(1, rows_cleaned)
            if share > spec.quality.max_quarantine_share:
                raise QualityGateFailed(
                    f"suite {spec.quality.suite}: {share:.1%} of rows fail after cleaning (more than "
                    f"max_quarantine_share {spec.quality.max_quarantine_share:.0%}); fix the source or the cleaning "
                    "steps")
            reasons_by_label = [(stages._label(r), _sorted_ids(r.failing_row_ids))
                                for r in revalidated.result.failed if r.failing_row_ids]
            held = Quarantined(kept=None, quarantine=_Pending(len(blocking)), rows=len(blocking),
                               reasons={stages._label(r): int(r.unexpected_count) for r in revalidated.result.failed})
        summary.rows_quarantined, summary.quarantine_reasons = held.rows, dict(held.reasons)
    cleaning_steps: list[dict[str, Any]] = []
    cleaner.start()
    writer = StreamWriter(ctx, source, cleaner.apply, blocking, reasons_by_label)

    meta: dict[str, Any] = {"pipeline": spec.name, "run_uid": ctx.run_uid,
                            "pii_findings": [dict(f) for f in summary.pii_findings],
                            "streamed": {"batch_rows": int(batch_rows)}}

    def write(ws: Any, session: Any, ds: Any, frame: Any, **kw: Any) -> Any:
        if kw.get("kind") == "data":  # the cleaning reports are complete only once the store pass has run
            row = writer(ws, session, ds, frame, **{**kw, "steps": []})
            cleaning_steps.extend(cleaner.report_dicts())
            row.steps_json = [*cleaning_steps, *writer.deid_steps]
            return row
        return writer(ws, session, ds, frame, **kw)

    stored = timed("encrypt", lambda: stages.store(ctx, _Pending(0), held, [], meta,
                                                   summary.clean_validation_success, validation_ids, write=write))
    summary.k_anonymity = writer.k_anonymity
    summary.rows_clean = stored.row_count
    summary.version, summary.quarantine_version = stored.version, stored.quarantine_version


def _sorted_ids(ids: Any) -> np.ndarray:
    """Row ids as one sorted array (int64 where they are integers) for `np.isin` per batch."""
    arr = np.asarray(list(ids) if isinstance(ids, (set, frozenset)) else ids)
    if arr.dtype == object and len(arr) and all(isinstance(x, (int, np.integer)) for x in arr[:1]):
        arr = arr.astype(np.int64)
    return np.sort(arr) if len(arr) else np.empty(0, dtype=np.int64)


class _Pending:
    """Stands for a frame the store pass writes batch by batch; `len` is its known row count."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return self.rows
