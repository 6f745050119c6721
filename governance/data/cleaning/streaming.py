"""Declared cleaning steps over a file in batches, with the global state each step needs bounded.

Why: most steps look at one row at a time and run per batch unchanged. The others need a
statistic of the whole column or memory of earlier rows; each is either computed in an extra
pass with constant state, or refused with a message (never approximated silently):

| step | streaming | state held |
|---|---|---|
| trim_whitespace, normalize_case, map_values, normalize_missing, strip_suffix, drop_missing | per batch | none |
| coerce_types (not `category`) | per batch | none |
| impute `constant` | per batch | none |
| impute `mean` | first pass: count and sum per column | 2 numbers per column |
| clip_outliers / flag_outliers `zscore` | first pass: count, mean, M2 (Chan et al. merge) | 3 numbers per column |
| standardize | first pass: count, mean, M2 | 3 numbers per column |
| normalize | first pass: min, max | 2 numbers per column |
| drop_duplicates (`keep: first` or `last`) | extra pass: keyed key hashes with row ordinals in a KeySpill (disk past ~1M), then the sorted ordinals to drop | 8 bytes per dropped duplicate |
| impute `median`/`mode`, `iqr` fences, coerce to `category` | refused | - |

Exact quartiles and medians need every value (or a second sort of the file); `mode` needs one
count per distinct value; a `category` dtype chosen per batch would differ between batches.
Means and standard deviations merged across batches can differ from pandas' one-pass result
in the last bits of a float, so a value lying exactly on a z-score fence could fall the other way.
drop_duplicates compares keyed 64-bit hashes of the key: a hash collision (probability about
n^2 / 2^65, below 3e-6 at 10^7 distinct keys) would drop a row that is not a duplicate. Rows are
named by their ordinal among the rows reaching the step in a pass (file order), which every pass
reproduces because the steps before it are fixed by then.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from governance.data.cleaning import Step, StepReport, apply_steps, build_steps
from governance.data.key_spill import KeySpill
from governance.errors import InputError

ROW_LOCAL = frozenset({"trim_whitespace", "normalize_case", "map_values", "normalize_missing", "strip_suffix",
                       "drop_missing", "coerce_types"})
_MOMENTS = frozenset({"clip_outliers", "flag_outliers", "standardize"})


def refusal(step: Step) -> str | None:
    """Why `step` cannot run in batches, or None."""
    p = step.params
    if step.name in ROW_LOCAL:
        if step.name == "coerce_types" and "category" in p.types.values():
            return "coercing to `category` picks categories per batch"
        return None
    if step.name == "impute":
        return None if p.strategy in ("mean", "constant") else f"strategy `{p.strategy}` needs every value at once"
    if step.name in ("clip_outliers", "flag_outliers"):
        return None if p.method == "zscore" else "exact IQR fences need every value (use method: zscore)"
    if step.name in ("standardize", "normalize"):
        return None
    if step.name == "drop_duplicates":
        return None
    return "it has no streaming implementation"


def needs_fit(step: Step) -> bool:
    return step.name in _MOMENTS or step.name in ("normalize", "drop_duplicates") or (
        step.name == "impute" and step.params.strategy == "mean")


@dataclass
class _Moments:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = np.inf
    hi: float = -np.inf
    total: float = 0.0

    def add(self, s: pd.Series) -> None:
        v = s.dropna().astype("float64").to_numpy()
        if not len(v):
            return
        n_b, mean_b = len(v), float(v.mean())
        m2_b = float(((v - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.total += float(v.sum())
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))

    def fixed_for(self, step: Step) -> Any:
        if step.name == "impute":
            return self.total / self.n if self.n else np.nan
        if self.n == 0:
            return (-np.inf, np.inf) if step.name != "normalize" and step.name != "standardize" else (np.nan, np.nan)
        if step.name == "normalize":
            return self.lo, self.hi - self.lo
        sd = float(np.sqrt(self.m2 / self.n))
        if step.name == "standardize":
            return self.mean, sd
        z = step.params.z
        return self.mean - z * sd, self.mean + z * sd


class _Dedupe(Step):
    """drop_duplicates over batches: a fit pass collects (key hash, ordinal) pairs; later passes drop
    the ordinals that pass found to repeat an earlier (or, with `keep: last`, a later) key."""

    name = "drop_duplicates"

    def __init__(self, inner: Step) -> None:
        super().__init__(inner.params, inner.index)
        self.inner = inner
        self.collect: KeySpill | None = None
        self.ordinal = 0  # rows that reached this step so far in this pass

    def run(self, df: pd.DataFrame, report: StepReport, row_id_column: str) -> pd.DataFrame:
        ordinals = np.arange(self.ordinal, self.ordinal + len(df), dtype=np.int64)
        self.ordinal += len(df)
        if self.collect is not None:
            key = self.need_columns(df, self.params.key, row_id_column)
            self.collect.add(self.collect.hash(df[key]), ordinals)
            return df
        drop = self.inner.fixed.get("drop")
        assert drop is not None, "drop_duplicates is fitted before it runs"
        return df[~np.isin(ordinals, drop, assume_unique=True)]


def _merge(a: Any, b: Any) -> Any:
    """Combine per-batch report details: counts add up, id lists concatenate, mappings merge."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a[k], b[k]) if k in a and k in b else (a[k] if k in a else b[k]) for k in {**a, **b}}
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a + b
    return b


class StreamCleaner:
    """Apply declared steps batch by batch: :meth:`fit` once, then one :meth:`start` per pass."""

    def __init__(self, specs: list[dict[str, Any]], *, row_id_column: str = "row_id",
                 spill_dir: Any = None) -> None:
        self.steps = build_steps(specs)
        self.row_id_column = row_id_column
        self.spill_dir = spill_dir
        for step in self.steps:
            why = refusal(step)
            if why:
                raise InputError(f"{step.label}: cannot run when streaming (--batch-rows): {why}; expected a "
                                 "streamable step (see docs/streaming.md), or run in memory (--batch-rows 0)")
        self.reports: list[StepReport] = []
        self._pass: list[Step] = []

    def fit(self, batches: Iterable[pd.DataFrame] | Any) -> None:
        """Compute every whole-column statistic, over the output of the steps before each step.

        Steps whose columns no earlier unfitted step touches share one pass (e.g. clip `bmi`, then
        impute `hba1c`): an unfitted step changes only its own columns, never which rows exist -
        unless a row-dropping step (drop_duplicates, drop_missing: an unfitted impute changes which
        values are missing) lies between them, which starts a new pass."""
        pending = [j for j, step in enumerate(self.steps) if needs_fit(step)]
        while pending:
            group = self._group(pending)
            if self.steps[group[0]].name == "drop_duplicates":
                self._fit_dedupe(group[0], batches)
                pending = pending[1:]
                continue
            moments = {j: {c: _Moments() for c in self.steps[j].params.columns} for j in group}
            self.start()
            for df in batches:
                out = df
                for j in range(group[-1] + 1):
                    if j in moments:
                        for c, m in moments[j].items():
                            m.add(self.steps[j].need(out, c, "numeric"))
                    out, _ = apply_steps(out, [self._pass[j]], row_id_column=self.row_id_column)
            for j in group:
                self.steps[j].fixed = {c: m.fixed_for(self.steps[j]) for c, m in moments[j].items()}
            pending = pending[len(group):]

    def _fit_dedupe(self, j: int, batches: Iterable[pd.DataFrame] | Any) -> None:
        """One pass through the steps before `j`; the repeats of each key become the rows to drop."""
        self.start()
        step = self._pass[j]
        assert isinstance(step, _Dedupe)
        with KeySpill(with_ids=True, directory=self.spill_dir) as spill:
            step.collect = spill
            for df in batches:
                apply_steps(df, self._pass[: j + 1], row_id_column=self.row_id_column)
            self.steps[j].fixed = {"drop": spill.repeat_ids(self.steps[j].params.keep)}

    def _group(self, pending: list[int]) -> list[int]:
        if self.steps[pending[0]].name == "drop_duplicates":  # its key may span any column: a pass of its own
            return [pending[0]]
        group, touched = [pending[0]], set(self.steps[pending[0]].params.columns)
        for j in pending[1:]:
            if self.steps[j].name == "drop_duplicates":
                break
            cols = set(self.steps[j].params.columns)
            between = self.steps[group[-1] + 1:j]
            if cols & touched or any(
                    s.name in ("drop_duplicates", "drop_missing") for s in between):
                break
            group.append(j)
            touched |= cols
        return group

    def start(self) -> None:
        """A fresh pass: stateful steps forget the rows of the previous pass; reports restart."""
        self._pass = [_Dedupe(s) if s.name == "drop_duplicates" else s for s in self.steps]
        self.reports = []

    def _apply(self, df: pd.DataFrame, upto: int | None = None) -> pd.DataFrame:
        steps = self._pass if upto is None else self._pass[:upto]
        out, _ = apply_steps(df, steps, row_id_column=self.row_id_column)
        return out

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """Clean one batch of the current pass; its step reports are merged into :attr:`reports`."""
        out, reps = apply_steps(df, self._pass, row_id_column=self.row_id_column)
        if not self.reports:
            self.reports = reps
        else:
            for mine, rep in zip(self.reports, reps):
                mine.rows_in += rep.rows_in
                mine.rows_out += rep.rows_out
                mine.values_changed += rep.values_changed
                mine.dropped_row_ids += rep.dropped_row_ids
                mine.failed_row_ids = _merge(mine.failed_row_ids, rep.failed_row_ids)
                mine.details = _merge(mine.details, rep.details)
        return out

    def report_dicts(self) -> list[dict[str, Any]]:
        out = []
        for r in self.reports:
            d = r.to_dict()
            d["streamed"] = True
            out.append(d)
        return out
