"""Validate a Parquet file larger than memory, one record batch at a time.

Batch-mergeable expectations (per-batch partials are merged, then decided):
  - column map expectations: not_be_null, be_null, be_between, be_in_set,
    not_be_in_set, match_regex, not_match_regex, value_lengths_between/equal
    (unexpected ids are concatenated; `mostly` uses the summed denominators);
  - table_row_count_between / _equal (counts add up);
  - column_mean / min / max_to_be_between (sum, count, min, max merge exactly);
  - column_to_exist, be_of_type, be_in_type_list (schema-level: every batch must pass).
Uniqueness (`be_unique`, `compound_columns_to_be_unique`) needs a global pass:
we keep a keyed 64-bit hash of each non-null value (or key tuple) plus its row id
and find duplicated hashes at the end. With integer row ids (assigned ids always
are) the pairs go to a :class:`~governance.data.key_spill.KeySpill`, which holds
at most ~1M pairs in memory and partitions the rest on disk, so memory does not
grow with the file; other row ids stay in memory (16 bytes a row). A hash
collision could flag two distinct values as duplicates (probability about
n^2 / 2^65, i.e. < 3e-6 at 10^7 rows); it never misses a real duplicate.
Anything else (medians, quantiles, distinct-value sets, GX-only types) is not
batch-mergeable here and raises InputError naming the expectation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from governance.errors import InputError
from governance.data.ingest import iter_parquet_batches
from governance.data.key_spill import KeySpill, duplicated
from governance.data.quality import fast
from governance.data.quality.engines import to_result
from governance.data.quality.result import ValidationResult
from governance.data.quality.suite import check_columns, parse_suite

MERGEABLE_TYPES = frozenset((fast.MAP_TYPES | fast.AGG_TYPES | fast.TABLE_TYPES | fast.SCHEMA_TYPES))


def _hash_rows(df: pd.DataFrame, exp: dict[str, Any], spill: KeySpill) -> tuple[np.ndarray, np.ndarray, int]:
    """(hashes, keep mask, considered) for the rows a uniqueness expectation looks at."""
    kw = exp["kwargs"]
    if exp["type"] == "expect_column_values_to_be_unique":
        s = df[kw["column"]]
        keep = ~s.isna().to_numpy(dtype=bool, na_value=True)
        h = spill.hash(s[keep])
        return h, keep, int(keep.sum())
    sub = df[list(kw["column_list"])]
    miss = sub.isna()
    how = kw.get("ignore_row_if", "all_values_are_missing")
    if how == "all_values_are_missing":
        keep = ~miss.all(axis=1).to_numpy(dtype=bool)
    elif how == "any_value_is_missing":
        keep = ~miss.any(axis=1).to_numpy(dtype=bool)
    else:
        keep = np.ones(len(sub), dtype=bool)
    h = spill.hash(sub[keep])
    return h, keep, int(keep.sum())


def validate_parquet_batches(
    path: Path,
    suite: dict[str, Any],
    *,
    row_id_column: str = "row_id",
    batch_rows: int = 1_000_000,
) -> ValidationResult:
    """Validate a Parquet file batch by batch with the fast engine; see the module docstring."""
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(Path(path)).schema_arrow.names
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; expected a Parquet file") from None
    except Exception as exc:
        raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    return validate_batches(iter_parquet_batches(Path(path), batch_rows, row_id_column=row_id_column), suite,
                            columns=names, row_id_column=row_id_column, source=str(path))


def check_mergeable(suite: dict[str, Any]) -> dict[str, Any]:
    """Parse the suite and refuse expectations that cannot be merged across batches (before reading data)."""
    suite = parse_suite(suite, source=f"suite {suite.get('name', '?') if isinstance(suite, dict) else '?'}")
    bad = [f"{i} ({e['type']})" for i, e in enumerate(suite["expectations"])
           if e["type"] not in MERGEABLE_TYPES or fast._GX_ONLY_KWARGS & set(e["kwargs"])]
    if bad:
        raise InputError(
            f"suite {suite['name']}: expectation(s) {', '.join(bad)} cannot be merged across "
            "batches; expected only batch-mergeable types (validate in memory instead)"
        )
    return suite


class BatchValidator:
    """Feed batches with :meth:`add`, then :meth:`result`; state as the module docstring bounds it."""

    def __init__(self, suite: dict[str, Any], *, row_id_column: str = "row_id",
                 spill_dir: Path | str | None = None) -> None:
        self.suite = check_mergeable(suite)
        self.row_id_column = row_id_column
        self.exps = self.suite["expectations"]
        self.partials: list[fast.Partial | None] = [None] * len(self.exps)
        self.spills: dict[int, KeySpill] = {
            i: KeySpill(with_ids=True, directory=spill_dir) for i, e in enumerate(self.exps)
            if e["type"] in fast.GLOBAL_TYPES}
        self.hash_ids: dict[int, list[np.ndarray]] = {}  # row ids that are not integers: kept in memory
        self.hashes: dict[int, list[np.ndarray]] = {}
        self._int_ids: bool | None = None
        self.seen = 0

    def add(self, df: pd.DataFrame) -> None:
        ids = df[self.row_id_column].to_numpy()
        if self._int_ids is None:  # one file, one id type: decided by the first batch
            self._int_ids = bool(np.issubdtype(ids.dtype, np.integer))
        self.seen += len(df)
        for i, exp in enumerate(self.exps):
            if exp["type"] in fast.GLOBAL_TYPES:
                spill = self.spills[i]
                h, keep, considered = _hash_rows(df, exp, spill)
                if self._int_ids:
                    spill.add(h, ids[keep])
                else:
                    self.hashes.setdefault(i, []).append(h)
                    self.hash_ids.setdefault(i, []).append(ids[keep])
                p = fast.Partial("map", total=len(df), considered=considered)
            else:
                if not fast.supports(exp, df):
                    raise InputError(
                        f"suite {self.suite['name']}: expectation {i} ({exp['type']}) is not supported "
                        "by the fast engine for this column's type; validate in memory instead"
                    )
                p = fast.partial(exp, df, ids)
            prev = self.partials[i]
            self.partials[i] = p if prev is None else fast.merge(prev, p)

    def result(self, source: str = "data") -> ValidationResult:
        if self.seen == 0:
            raise InputError(f"{source}: no rows; expected at least one row")
        try:
            for i, spill in self.spills.items():
                part = self.partials[i]
                assert part is not None
                if not self._int_ids:
                    part.unexpected_ids = duplicated(np.concatenate(self.hashes[i]), np.concatenate(self.hash_ids[i]))
                else:
                    part.unexpected_ids = spill.duplicated_ids()
        finally:
            self.close()
        results = [to_result(i, exp, self.partials[i]) for i, exp in enumerate(self.exps)]
        return ValidationResult(suite=self.suite["name"], success=all(r.success for r in results),
                                row_count=self.seen, results=results, row_id_column=self.row_id_column)

    def close(self) -> None:
        """Remove any spilled keys (also done by :meth:`result`)."""
        for spill in self.spills.values():
            spill.close()


def validate_batches(
    batches: Iterable[pd.DataFrame],
    suite: dict[str, Any],
    *,
    columns: list[str],
    row_id_column: str = "row_id",
    source: str = "data",
) -> ValidationResult:
    """Validate any sequence of batches (Parquet or CSV, see governance.data.streaming) with the fast engine."""
    v = BatchValidator(suite, row_id_column=row_id_column)
    check_columns(v.suite, [*columns, row_id_column], source=f"suite {v.suite['name']}")
    for df in batches:
        v.add(df)
    return v.result(source)
