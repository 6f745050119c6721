"""Column-level PII scan: which columns hold which kind of PII, and how sure we are.

``scan(df)`` samples up to ``sample_rows`` rows (seeded, so repeatable), runs every registered
detector over each column (vectorized regex + validation of the matches, see ``detectors``) and
reports, per column, the best-supported PII type. Findings carry shares and confidences only,
never values.

Confidence: with a column-name hint ``0.6 + 0.4 * share``; without one
``detector.base_confidence * share``. A column is reported when at least ``min_share`` of its
non-null sampled values match (or ``hint_min_share`` when the column name carries a hint:
a ``phone`` column full of malformed entries is still a phone column).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from privacy.deid.detectors import detectors
from privacy.errors import InputError

__all__ = ["ColumnFinding", "scan"]


@dataclass(frozen=True)
class ColumnFinding:
    column: str
    pii_type: str
    share: float              # share of non-null sampled values detected as this type
    confidence: float         # 0..1
    is_direct_identifier: bool
    n_sampled: int = 0        # non-null values examined
    hinted: bool = False      # the column name carries a hint for the type

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scan(df: pd.DataFrame, sample_rows: int = 10000, seed: int = 0, *,
         min_share: float = 0.5, hint_min_share: float = 0.2) -> list[ColumnFinding]:
    """One finding per column that holds PII, in column order."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"scan: expected a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(sample_rows, int) or sample_rows < 1:
        raise InputError(f"scan: sample_rows must be a positive integer, got {sample_rows!r}")
    sample = df.sample(n=sample_rows, random_state=seed) if len(df) > sample_rows else df
    findings: list[ColumnFinding] = []
    for column in sample.columns:
        values = sample[column]
        if isinstance(values, pd.DataFrame):  # duplicate column names
            raise InputError(f"scan: column name {column!r} occurs more than once")
        values = values[values.notna()]
        n = len(values)
        if n == 0:
            continue
        best: ColumnFinding | None = None
        for det in detectors():
            hinted = det.hinted(column)
            share = float(det.match(values, column).sum()) / n
            if share < (hint_min_share if hinted else min_share) or share == 0.0:
                continue
            conf = 0.6 + 0.4 * share if hinted else det.base_confidence * share
            cand = ColumnFinding(str(column), det.pii_type, round(share, 4), round(min(conf, 1.0), 4),
                                 bool(det.is_direct_identifier), n, hinted)
            if best is None or (cand.confidence, cand.share) > (best.confidence, best.share):
                best = cand
        if best is not None:
            findings.append(best)
    return findings
