"""Column-level PII scan: which columns hold which kind of PII, how sure we are, and why.

``scan(df)`` samples up to ``sample_rows`` rows (seeded, so repeatable) and hands each column to
every detector of :mod:`privacy.deid.detect` (values first; the column name is only one signal
that raises confidence). Per column the best-supported verdict wins (confidence, then the
detector's strength: a checksum beats a format, then share); ``record_id`` and ``free_text``
apply only when no typed detector fired. Quasi-identifier findings carry a k-anonymity
estimate over the whole quasi set (full pass over all rows) in their evidence.

Findings carry column names, types, shares, counts and validator names, never cell values:
they go into run records and reports.

Renames from the regex-only scanner (documented for callers): ``zip`` -> ``postcode``;
``date_of_birth`` is now a direct identifier (HIPAA Safe Harbor lists full dates of birth);
national identifiers carry their own types (``ssn``, ``uk_nino``, ``de_idnr``, ``fr_nir``,
``es_dni``, ``it_codice_fiscale``, ``nl_bsn``, ``in_aadhaar``, ``br_cpf``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

import pandas as pd

from privacy.deid.detect import ColumnSample, Verdict, registered
from privacy.deid.detect.base import as_text
from privacy.errors import InputError

__all__ = ["ColumnFinding", "scan", "scan_sample", "quasi_k"]


@dataclass(frozen=True)
class ColumnFinding:
    column: str
    pii_type: str
    share: float              # share of examined values that support the type
    confidence: float         # 0..1
    is_direct_identifier: bool
    n_sampled: int = 0        # non-null values in the sample
    hinted: bool = False      # the column name carries a hint for the type
    evidence: str = ""        # why: counts, shares, validators, regions; never values
    kind: str = "direct"      # direct | quasi | record_id | free_text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dtype(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s.dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(s.dtype):
        return "int"
    if pd.api.types.is_float_dtype(s.dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime"
    return "str"


def _best(col: ColumnSample, types: set[str] | None) -> Verdict | None:
    best: tuple[tuple[float, int, float], Verdict] | None = None
    fallback: Verdict | None = None
    for det in registered():
        if types is not None and not set(det.pii_types) & types:
            continue
        v = det.detect(col)
        if v is None:
            continue
        if v.kind in ("record_id", "free_text"):
            fallback = fallback or v
            continue
        key = (v.confidence, getattr(det, "strength", 1), v.share)
        if best is None or key > best[0]:
            best = (key, v)
    return best[1] if best else fallback


def quasi_k(df: pd.DataFrame, columns: Iterable[str]) -> tuple[int, float]:
    """(smallest equivalence class, share of rows in classes of size 1) over ``columns``."""
    cols = [c for c in columns if c in df.columns]
    if not cols or len(df) == 0:
        return 0, 0.0
    sizes = df.groupby(cols, dropna=False, sort=False, observed=True).size()
    return int(sizes.min()), float(sizes[sizes == 1].sum()) / len(df)


def scan(df: pd.DataFrame, sample_rows: int = 10000, seed: int = 0, *, row_id: str | None = None,
         types: Iterable[str] | None = None, min_share: float | None = None,
         hint_min_share: float | None = None) -> list[ColumnFinding]:
    """One finding per column that holds PII, in column order.

    ``row_id``: the declared row-id column (minted by the platform), never reported as a record
    identifier. ``types``: restrict to these pii types. ``min_share`` / ``hint_min_share`` are
    accepted for callers of the regex scanner; thresholds are now per detector (see each one)."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"scan: expected a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(sample_rows, int) or isinstance(sample_rows, bool) or sample_rows < 1:
        raise InputError(f"scan: sample_rows must be a positive integer, got {sample_rows!r}")
    if row_id is not None and row_id not in df.columns:
        raise InputError(f"scan: row_id column {row_id!r} is not in the data")
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise InputError(f"scan: column name {dup!r} occurs more than once")
    wanted = None if types is None else set(types)
    sample = df.sample(n=sample_rows, random_state=seed) if len(df) > sample_rows else df
    return scan_sample(sample, row_id=row_id, types=wanted, full=df, k_of=lambda cols: quasi_k(df, cols))


def scan_sample(sample: pd.DataFrame, *, row_id: str | None = None, types: Iterable[str] | None = None,
                full: pd.DataFrame | None = None,
                k_of: Callable[[list[str]], tuple[int, float]] | None = None) -> list[ColumnFinding]:
    """The findings of :func:`scan` from a sample drawn elsewhere (e.g. while streaming a file in batches).

    ``k_of(quasi_columns)`` gives (min k, share of unique rows) over *all* rows; without it the
    k-anonymity note is computed on the sample and says so. ``full`` is what detectors see as the whole column
    (the sample itself when None: no detector reads more than the sample today)."""
    wanted = None if types is None else set(types)
    whole = sample if full is None else full
    findings: list[ColumnFinding] = []
    for column in sample.columns:
        if row_id is not None and column == row_id:
            continue
        raw = sample[column]
        if _dtype(raw) == "bool":
            continue  # a yes/no flag names nobody on its own
        try:
            values = as_text(raw)
        except Exception:
            continue
        if len(values) == 0:
            continue
        # object dtype: the str accessor then runs Python regexes directly (the Arrow-backed
        # accessor re-checks every pattern per call, ~10x slower on a few hundred values)
        col = ColumnSample(str(column), pd.Series(values.tolist(), dtype=object), whole[column], _dtype(raw))
        v = _best(col, wanted)
        if v is not None:
            findings.append(ColumnFinding(str(column), v.pii_type, v.share, v.confidence, v.is_direct_identifier,
                                          col.n, v.hinted, v.evidence, v.kind))
    quasi = [f.column for f in findings if f.kind == "quasi"]
    if quasi:
        k, unique = (k_of or (lambda cols: quasi_k(sample, cols)))(quasi)
        scope = "" if k_of is not None else f" in {len(sample):,} sampled rows"
        note = (f"; k-anonymity over quasi set ({len(quasi)} columns){scope}: min k = {k}, "
                f"{unique:.1%} of rows unique")
        findings = [ColumnFinding(**{**f.to_dict(), "evidence": f.evidence + note}) if f.kind == "quasi" else f
                    for f in findings]
    return findings
