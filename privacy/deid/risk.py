"""Re-identification risk: k-anonymity, l-diversity, and release gates.

Everything here reports sizes and counts only -- never the quasi-identifier values of a
class (a small class's values are exactly what an attacker would want).

Null quasi-identifier values form their own value (a missing ZIP is a value an attacker sees).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from privacy.errors import AccessDenied, InputError

__all__ = ["KAnonReport", "check_k", "k_anonymity", "l_diversity", "report_from_sizes", "require_k",
           "enforce_no_direct_identifiers"]


@dataclass(frozen=True)
class KAnonReport:
    k: int                                  # size of the smallest equivalence class (0 if no rows)
    n_classes: int
    smallest_class_sizes: list[int]         # up to 10 smallest class sizes, ascending (sizes only)
    n_rows: int = 0
    quasi_identifiers: tuple[str, ...] = ()
    _sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False,
                               compare=False)

    def share_of_rows_in_classes_below(self, k_required: int) -> float:
        """Share of rows that sit in equivalence classes smaller than ``k_required``."""
        if self.n_rows == 0:
            return 0.0
        return float(self._sizes[self._sizes < k_required].sum()) / self.n_rows

    def classes_below(self, k_required: int) -> int:
        return int((self._sizes < k_required).sum())

    def sizes_below(self, k_required: int, limit: int = 10) -> list[int]:
        return [int(v) for v in self._sizes[self._sizes < k_required][:limit]]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n_classes": self.n_classes, "n_rows": self.n_rows,
                "quasi_identifiers": list(self.quasi_identifiers),
                "smallest_class_sizes": list(self.smallest_class_sizes)}


def _check_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> list[str]:
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    if isinstance(columns, str):
        columns = [columns]
    cols = list(columns)
    if not cols:
        raise InputError(f"{what}: expected at least one quasi-identifier column")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"{what}: column(s) {', '.join(map(repr, missing))} not in the data")
    return cols


def _class_sizes(df: pd.DataFrame, qis: list[str]) -> np.ndarray:
    if len(df) == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = df.groupby(qis, dropna=False, observed=True, sort=False).size().to_numpy()
    return np.sort(sizes.astype(np.int64))


def k_anonymity(df: pd.DataFrame, quasi_identifiers: Iterable[str]) -> KAnonReport:
    """The k for which ``df`` is k-anonymous over ``quasi_identifiers``, plus class-size stats."""
    qis = _check_columns(df, quasi_identifiers, "k_anonymity")
    return report_from_sizes(_class_sizes(df, qis), int(len(df)), qis)


def report_from_sizes(sizes: Any, n_rows: int, quasi_identifiers: Iterable[str]) -> KAnonReport:
    """The report from the equivalence-class sizes alone, however they were counted (pandas
    here, an exact Spark ``groupBy`` in governance.data.spark.kanon), so both engines report alike."""
    ordered = np.sort(np.asarray(sizes, dtype=np.int64))
    return KAnonReport(
        k=int(ordered[0]) if len(ordered) else 0,
        n_classes=int(len(ordered)),
        smallest_class_sizes=[int(v) for v in ordered[:10]],
        n_rows=int(n_rows),
        quasi_identifiers=tuple(quasi_identifiers),
        _sizes=ordered,
    )


def l_diversity(df: pd.DataFrame, quasi_identifiers: Iterable[str], sensitive: str) -> int:
    """Distinct l-diversity: the fewest distinct ``sensitive`` values in any equivalence class
    (0 if there are no rows). Null counts as a value."""
    qis = _check_columns(df, quasi_identifiers, "l_diversity")
    if sensitive not in df.columns:
        raise InputError(f"l_diversity: sensitive column {sensitive!r} not in the data")
    if sensitive in qis:
        raise InputError(f"l_diversity: sensitive column {sensitive!r} is also a quasi-identifier")
    if len(df) == 0:
        return 0
    per = df.groupby(qis, dropna=False, observed=True, sort=False)[sensitive].nunique(dropna=False)
    return int(per.min())


def require_k(df: pd.DataFrame, quasi_identifiers: Iterable[str], k: int) -> KAnonReport:
    """Raise InputError unless every equivalence class has at least ``k`` rows."""
    _positive_k(k)
    return check_k(k_anonymity(df, quasi_identifiers), k)


def _positive_k(k: object) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InputError(f"require_k: k must be a positive integer, got {k!r}")


def check_k(rep: KAnonReport, k: int) -> KAnonReport:
    """Raise InputError unless every class of ``rep`` has at least ``k`` rows (the gate of ``require_k``)."""
    _positive_k(k)
    n_below = rep.classes_below(k)
    if n_below:
        sizes = rep.sizes_below(k)
        more = "" if n_below <= len(sizes) else f", ... ({n_below - len(sizes)} more)"
        raise InputError(
            f"k-anonymity: {n_below} equivalence class(es) over ({', '.join(rep.quasi_identifiers)}) "
            f"have fewer than k={k} rows (sizes {', '.join(map(str, sizes))}{more}; "
            f"{rep.share_of_rows_in_classes_below(k):.2%} of rows); generalize or suppress first")
    return rep


def enforce_no_direct_identifiers(df: pd.DataFrame, direct_identifier_columns: Iterable[object],
                                  transformed: Iterable[str] = ()) -> None:
    """Raise AccessDenied if a direct-identifier column is still in clear.

    ``direct_identifier_columns``: column names, or ``scan`` findings (those with
    ``is_direct_identifier`` count). ``transformed``: names of columns that were pseudonymized or
    generalized, or the report list of ``apply_deid`` (see ``transforms.transformed_columns``).
    A column that is absent (dropped) or transformed is not in clear.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"enforce_no_direct_identifiers: expected a DataFrame, got {type(df).__name__}")
    names: list[str] = []
    for item in direct_identifier_columns:
        if isinstance(item, str):
            names.append(item)
        elif getattr(item, "is_direct_identifier", False):
            names.append(str(getattr(item, "column")))
    done: set[str] = set()
    for t in transformed:
        if isinstance(t, str):
            done.add(t)
        elif isinstance(t, dict) and t.get("action") in ("pseudonymize", "generalize", "redact"):
            done.add(str(t.get("column")))
    clear = [c for c in names if c in df.columns and c not in done]
    if clear:
        raise AccessDenied(
            f"direct identifier column {clear[0]!r} is still in clear"
            + (f" (and {len(clear) - 1} more: {', '.join(map(repr, clear[1:]))})" if len(clear) > 1 else "")
            + "; drop or pseudonymize it before release")
