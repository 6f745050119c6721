"""Validate a Parquet file larger than memory, one record batch at a time.

Batch-mergeable expectations (per-batch partials are merged, then decided):
  - column map expectations: not_be_null, be_null, be_between, be_in_set,
    not_be_in_set, match_regex, not_match_regex, value_lengths_between/equal
    (unexpected ids are concatenated; `mostly` uses the summed denominators);
  - table_row_count_between / _equal (counts add up);
  - column_mean / min / max_to_be_between (sum, count, min, max merge exactly);
  - column_to_exist, be_of_type, be_in_type_list (schema-level: every batch must pass).
Uniqueness (`be_unique`, `compound_columns_to_be_unique`) needs a global pass:
we keep a 64-bit hash of each non-null value (or key tuple) plus its row id,
16 bytes a row, and find duplicated hashes with one sort at the end. A hash
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
from governance.data.quality import fast
from governance.data.quality.engines import to_result
from governance.data.quality.result import ValidationResult
from governance.data.quality.suite import check_columns, parse_suite

MERGEABLE_TYPES = frozenset((fast.MAP_TYPES | fast.AGG_TYPES | fast.TABLE_TYPES | fast.SCHEMA_TYPES))


def _hash_rows(df: pd.DataFrame, exp: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """(hashes, keep mask, considered) for the rows a uniqueness expectation looks at."""
    kw = exp["kwargs"]
    if exp["type"] == "expect_column_values_to_be_unique":
        s = df[kw["column"]]
        keep = ~s.isna().to_numpy(dtype=bool, na_value=True)
        h = pd.util.hash_pandas_object(s[keep], index=False).to_numpy()
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
    h = pd.util.hash_pandas_object(sub[keep], index=False).to_numpy()
    return h, keep, int(keep.sum())


def _duplicated_ids(hashes: np.ndarray, ids: np.ndarray) -> np.ndarray:
    if len(hashes) < 2:
        return ids[:0]
    order = np.argsort(hashes, kind="stable")
    hs = hashes[order]
    same = hs[1:] == hs[:-1]
    dup = np.zeros(len(hs), dtype=bool)
    dup[1:] |= same
    dup[:-1] |= same
    return ids[order[dup]]


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

    def __init__(self, suite: dict[str, Any], *, row_id_column: str = "row_id") -> None:
        self.suite = check_mergeable(suite)
        self.row_id_column = row_id_column
        self.exps = self.suite["expectations"]
        self.partials: list[fast.Partial | None] = [None] * len(self.exps)
        self.hashes: dict[int, list[np.ndarray]] = {}
        self.hash_ids: dict[int, list[np.ndarray]] = {}
        self.seen = 0

    def add(self, df: pd.DataFrame) -> None:
        ids = df[self.row_id_column].to_numpy()
        self.seen += len(df)
        for i, exp in enumerate(self.exps):
            if exp["type"] in fast.GLOBAL_TYPES:
                h, keep, considered = _hash_rows(df, exp)
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
        for i in self.hashes:
            part = self.partials[i]
            assert part is not None
            part.unexpected_ids = _duplicated_ids(np.concatenate(self.hashes[i]), np.concatenate(self.hash_ids[i]))
        results = [to_result(i, exp, self.partials[i]) for i, exp in enumerate(self.exps)]
        return ValidationResult(suite=self.suite["name"], success=all(r.success for r in results),
                                row_count=self.seen, results=results, row_id_column=self.row_id_column)


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
