"""`privgov scan` over a file in batches: a bounded random sample for the detectors, counters for the rest.

Why: the detectors judge a column from a sample of its values (10 000 rows, as the in-memory scan
does), so a larger file needs no more memory for them. Memory held while streaming:

* the sample: at most ``sample_rows`` rows, chosen uniformly without replacement from the row
  count with NumPy's seeded ``Generator.choice`` (Floyd's algorithm: O(sample) memory, where the
  in-memory scan's ``DataFrame.sample`` permutes all N positions). Files of at most ``sample_rows``
  rows are examined whole, exactly as in memory; larger files see a different (equally uniform,
  equally seeded) sample than the in-memory scan, so a borderline column can score differently;
* the k-anonymity note over the quasi-identifiers: exact for a file examined whole; for a larger
  file it is computed on the sample and says so ("in 10,000 sampled rows"). Exact counts would need
  one counter per distinct combination of quasi values, which for a ZIP x age x sex x race set is
  about one per row: memory growing with the file, the thing streaming must not do.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from governance.data.pii_report import finding_record
from governance.data.streaming import BatchSource

SAMPLE_ROWS = 10_000


def sample_rows(source: BatchSource, n: int = SAMPLE_ROWS, seed: int = 0) -> tuple[pd.DataFrame, bool]:
    """(up to `n` uniformly chosen rows, whether the row ids are the 0..N-1 ingest assigned)."""
    total = source.count()
    chosen = None if total <= n else np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    parts, assigned, offset = [], True, 0
    rid = source.row_id_column
    for df in source:
        m = len(df)
        ids = df[rid]
        assigned = assigned and bool(pd.api.types.is_integer_dtype(ids)
                                     and np.array_equal(ids.to_numpy(), np.arange(offset, offset + m)))
        if chosen is None:
            parts.append(df)
        else:
            lo, hi = np.searchsorted(chosen, [offset, offset + m])
            if hi > lo:
                parts.append(df.iloc[chosen[lo:hi] - offset])
        offset += m
    return pd.concat(parts, ignore_index=True), assigned


def scan_batches(source: BatchSource, *, seed: int = 0) -> list[dict[str, Any]]:
    """The records `privgov scan` prints, computed with bounded memory (see the module docstring)."""
    from privacy.deid.scan import quasi_k, scan_sample

    sample, assigned = sample_rows(source, SAMPLE_ROWS, seed)
    if assigned:
        sample = sample.drop(columns=[source.row_id_column])
    whole = len(sample) == source.count()
    findings = scan_sample(sample, k_of=(lambda cols: quasi_k(sample, cols)) if whole else None)
    return [finding_record(f) for f in findings]
