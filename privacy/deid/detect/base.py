"""What every column detector sees and returns, and the registry that collects them.

A detector looks at a :class:`ColumnSample` (a seeded sample of one column's non-null values as
stripped strings, plus the column name and, for detectors that need a full pass, the whole
column) and returns a :class:`Verdict` or None. Verdicts carry a confidence and a human-readable
``evidence`` line made of counts, shares, validator names and regions, never cell values:
findings go into run records and reports that an auditor (or an adversary) reads.

The column name is one signal among several: :func:`hinted` tells whether it carries a hint
for a type, which raises confidence (and, for a few formats that are ambiguous on values
alone, such as nine bare digits as a US SSN, is required); no detector needs a name to fire
on strong value evidence.

Registry in the style of Opacus' accountant registry: ``register(detector)``, ``registered()``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Protocol

import numpy as np
import pandas as pd

from privacy.errors import InputError

__all__ = ["ColumnSample", "Verdict", "ColumnDetector", "register", "registered", "get",
           "column_tokens", "hinted", "as_text", "share_valid", "KINDS"]

KINDS = ("direct", "quasi", "record_id", "free_text")
#: how many distinct sampled values the (slower) validators look at per column
VALIDATE_LIMIT = 400


def column_tokens(column: object) -> str:
    """``"dateOfBirth"`` -> ``"_date_of_birth_"``; ``"Patient Phone#"`` -> ``"_patient_phone_"``."""
    if column is None:
        return "__"
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(column))
    toks = [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]
    return "_" + "_".join(toks) + "_"


def hinted(pattern: str | None, column: object) -> bool:
    """Whether the column name's tokens match ``pattern`` (e.g. ``_(phone|tel)_``)."""
    return pattern is not None and re.search(pattern, column_tokens(column)) is not None


def as_text(values: pd.Series) -> pd.Series:
    """Non-null values as stripped strings. Datetimes -> ISO dates; integral floats (an id read
    with NaNs) -> integer strings; other floats -> their repr; bools -> 'True'/'False'."""
    s = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    s = s[s.notna()]
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.dt.strftime("%Y-%m-%d").astype("str")
    if pd.api.types.is_float_dtype(s.dtype):
        arr = s.to_numpy(dtype=np.float64)
        fin = np.isfinite(arr)
        s = s[fin]
        arr = arr[fin]
        if len(arr) and np.all(arr == np.round(arr)) and np.all(np.abs(arr) < 1e18):
            return s.astype("int64").astype("str")
        return s.astype("str")
    if pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("str")
    if s.dtype == object:
        s = s.map(_cell_text)
    out = s.astype("str").str.strip()
    return out[out.str.len() > 0]


def _cell_text(v: object) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    strftime = getattr(v, "strftime", None)
    if callable(strftime):
        try:
            return str(strftime("%Y-%m-%d"))
        except Exception:
            return str(v)
    return str(v)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass
class ColumnSample:
    """One column as detectors see it. ``values``: non-null sampled values as stripped strings;
    ``full``: the whole column (for full-pass checks such as per-row uniqueness)."""

    column: str
    values: pd.Series
    full: pd.Series
    dtype: str
    _cache: dict[object, Any] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return int(len(self.values))

    def distinct(self, limit: int = VALIDATE_LIMIT) -> pd.Series:
        """Up to ``limit`` sampled values (with repeats, so shares are per value, not per
        distinct string), for validators that cost microseconds each."""
        key = ("head", limit)
        if key not in self._cache:
            self._cache[key] = self.values.iloc[:limit]
        return self._cache[key]

    def texts(self, limit: int = VALIDATE_LIMIT) -> list[str]:
        """The same values as :meth:`distinct`, as a Python list (cheap regex loops)."""
        key = ("texts", limit)
        if key not in self._cache:
            self._cache[key] = [str(t) for t in self.values.iloc[:limit].tolist()]
        out: list[str] = self._cache[key]
        return out

    def fullmatch(self, pattern: str, limit: int = VALIDATE_LIMIT) -> np.ndarray:
        """Boolean mask over :meth:`texts`: which values fully match ``pattern`` (memoized).

        Why not ``Series.str.fullmatch``: for a few hundred values its per-call overhead
        (~2 ms) is ten times the matching itself, and a scan makes thousands of such calls."""
        key = ("fm", pattern, limit)
        if key not in self._cache:
            rx = _compiled(pattern)
            self._cache[key] = np.fromiter((rx.fullmatch(t) is not None for t in self.texts(limit)), dtype=bool)
        mask: np.ndarray = self._cache[key]
        return mask

    @property
    def mean_len(self) -> float:
        """Mean length of :meth:`texts` (0 when empty)."""
        t = self.texts()
        return sum(map(len, t)) / len(t) if t else 0.0

    def share(self, pred: Callable[[str], bool], limit: int = VALIDATE_LIMIT) -> float:
        """Share of :meth:`texts` for which ``pred`` holds."""
        t = self.texts(limit)
        return sum(1 for v in t if pred(v)) / len(t) if t else 0.0

    def memo(self, key: str, fn: Callable[[], object]) -> object:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    @property
    def is_numeric(self) -> bool:
        return self.dtype in ("int", "float")


@dataclass(frozen=True)
class Verdict:
    """A detector's finding on one column (no values, only counts and shares in ``evidence``)."""

    pii_type: str
    kind: str                  # direct | quasi | record_id | free_text
    share: float               # share of examined values that support the type
    confidence: float          # 0..1
    evidence: str
    hinted: bool = False

    @property
    def is_direct_identifier(self) -> bool:
        return self.kind in ("direct", "record_id") or (self.kind == "free_text" and self.share > 0)


class ColumnDetector(Protocol):
    """What the registry holds: a name, the types it can report and ``detect``."""

    name: str
    pii_types: tuple[str, ...]
    kind: str
    description: str

    def detect(self, col: ColumnSample) -> Verdict | None: ...


_REGISTRY: dict[str, ColumnDetector] = {}


def register(detector: ColumnDetector, *, replace: bool = False) -> ColumnDetector:
    """Add a detector (its ``name`` is the key)."""
    name = getattr(detector, "name", None)
    if not isinstance(name, str) or not name:
        raise InputError("register: detector.name must be a non-empty string")
    if not callable(getattr(detector, "detect", None)):
        raise InputError(f"register: detector {name!r} has no detect(col) method")
    if name in _REGISTRY and not replace:
        raise InputError(f"register: a detector named {name!r} is already registered")
    _REGISTRY[name] = detector
    return detector


def registered() -> list[ColumnDetector]:
    """All detectors, in registration order."""
    return list(_REGISTRY.values())


def get(name: str) -> ColumnDetector:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"detector: unknown {name!r}; expected one of {', '.join(_REGISTRY)}") from None


def share_valid(values: Iterable[str], validate: Callable[[str], bool], *,
                give_up_below: float = 0.0) -> tuple[float, int]:
    """(share of values that ``validate`` accepts, how many were examined); memoized per
    distinct string so repeated values cost one call. After 40 values, gives up (returns what
    it has) when fewer than ``give_up_below`` of them passed."""
    seen: dict[str, bool] = {}
    n = ok = 0
    for v in values:
        if n == 40 and ok < give_up_below * 40:
            return ok / n, n
        n += 1
        r = seen.get(v)
        if r is None:
            try:
                r = bool(validate(v))
            except Exception:
                r = False
            seen[v] = r
        ok += r
    return (ok / n if n else 0.0), n


def confidence(share: float, is_hinted: bool, base: float = 0.9) -> float:
    """Value evidence first; a name hint adds to it (never creates it alone)."""
    c = base * share + (0.1 if is_hinted else 0.0)
    return round(min(1.0, max(0.0, c)), 4)
