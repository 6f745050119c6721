"""Cleaning steps as declared data: a registry, a spec parser and a runner.

Why declared steps: a pipeline file says *what* was done to the data
(`{"step": "impute", "columns": ["age"], "strategy": "median"}`), the run
records per step how many rows/values it touched and which row ids it dropped,
and nobody can slip in an untracked transformation. Same shape as Opacus'
accountant registry: one small class per step, `register_step` adds one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from governance.errors import InputError


class StepParams(BaseModel):
    """Base for step parameters: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class StepReport:
    """What one step did: counts and row ids, never data values."""

    index: int
    step: str
    params: dict[str, Any]
    rows_in: int
    rows_out: int
    values_changed: int = 0
    dropped_row_ids: list[Any] = field(default_factory=list)
    failed_row_ids: dict[str, list[Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_dropped(self) -> int:
        return self.rows_in - self.rows_out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows_dropped"] = self.rows_dropped
        return d


class Step:
    """One cleaning transformation; subclasses set `name`, `Params` and `run`."""

    name: ClassVar[str]
    Params: ClassVar[type[StepParams]] = StepParams

    def __init__(self, params: StepParams, index: int = 0) -> None:
        self.params = params
        self.index = index
        # Per-column statistics computed over the whole file by a first pass when streaming
        # (governance/data/cleaning/streaming.py); empty in memory, where each step computes its own.
        self.fixed: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return f"cleaning step {self.index} ({self.name})"

    def columns(self, df: pd.DataFrame, row_id_column: str) -> list[str]:
        """Columns whose values this step may change (compared for `values_changed`)."""
        cols = getattr(self.params, "columns", None)
        return list(cols) if cols else []

    def run(self, df: pd.DataFrame, report: StepReport, row_id_column: str) -> pd.DataFrame:
        raise NotImplementedError

    # helpers shared by steps -------------------------------------------------
    def need(self, df: pd.DataFrame, col: str, kind: str | None = None) -> pd.Series:
        """Return df[col]; InputError naming step, column and expected type otherwise."""
        if col not in df.columns:
            raise InputError(f"{self.label}: column {col!r} is not in the data; expected one of {list(df.columns)[:20]}")
        s = df[col]
        if kind == "string" and not is_text(s):
            raise InputError(f"{self.label}: column {col!r} has dtype {s.dtype}; expected a string column")
        if kind == "numeric" and not is_number(s):
            raise InputError(f"{self.label}: column {col!r} has dtype {s.dtype}; expected a numeric column")
        return s

    def need_columns(self, df: pd.DataFrame, declared: list[str] | None, row_id_column: str) -> list[str]:
        """The declared columns, else every column but the row id; each must exist.

        Why the row id is left out: steps that compare whole rows (duplicates,
        missing values) must not see two rows as different only by their id."""
        cols = list(declared) if declared else [c for c in df.columns if c != row_id_column]
        for c in cols:
            self.need(df, c)
        return cols


def is_text(s: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(s.dtype):
        return True
    if s.dtype == object:
        return bool(s.dropna().map(lambda v: isinstance(v, str)).all())
    return False


def is_number(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


_STEPS: dict[str, type[Step]] = {}


def register_step(cls: type[Step]) -> type[Step]:
    """Class decorator: make `cls` available under `cls.name` in specs."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a `name`")
    _STEPS[cls.name] = cls
    return cls


def available_steps() -> list[str]:
    return sorted(_STEPS)


def step_classes() -> dict[str, type[Step]]:
    """Every registered step by name (the reference docs list their parameters)."""
    return dict(sorted(_STEPS.items()))


def build_steps(specs: list[dict[str, Any]]) -> list[Step]:
    """Parse `[{"step": name, **params}, ...]` into steps; InputError names index, step and key."""
    if not isinstance(specs, list):
        raise InputError("cleaning: expected a list of steps like {'step': 'trim_whitespace'}")
    steps: list[Step] = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or "step" not in spec:
            raise InputError(f"cleaning step {i}: expected an object with a 'step' key, e.g. {{'step': 'trim_whitespace'}}")
        params = dict(spec)
        name = params.pop("step")
        cls = _STEPS.get(name)
        if cls is None:
            raise InputError(f"cleaning step {i}: unknown step {name!r}; expected one of {available_steps()}")
        try:
            p = cls.Params(**params)
        except ValidationError as exc:
            raise InputError(f"cleaning step {i} ({name}): {_describe(exc, cls.Params)}") from None
        steps.append(cls(p, i))
    return steps


def _describe(exc: ValidationError, model: type[StepParams]) -> str:
    errs = exc.errors()
    err = next((e for e in errs if e.get("type") == "extra_forbidden"), errs[0])  # typos first
    key = ".".join(str(x) for x in err.get("loc", ())) or "?"
    allowed = ", ".join(model.model_fields)
    if err.get("type") == "extra_forbidden":
        return f"unknown key {key!r}; expected keys: {allowed}"
    if err.get("type") == "missing":
        return f"missing key {key!r}; expected keys: {allowed}"
    return f"bad value for key {key!r} ({err.get('msg', 'invalid')})"


def _changed(a: pd.Series, b: pd.Series) -> int:
    """Cells that differ, treating two missing values as equal."""
    na_a, na_b = a.isna().to_numpy(dtype=bool), b.isna().to_numpy(dtype=bool)
    if a.dtype == b.dtype:
        eq = (a == b).to_numpy(dtype=bool, na_value=False)
    else:
        oa, ob = a.astype(object).to_numpy(copy=True), b.astype(object).to_numpy(copy=True)
        oa[na_a], ob[na_b] = None, None  # pd.NA has no truth value
        eq = np.asarray(oa == ob, dtype=bool)
    diff = ~eq & ~(na_a & na_b)
    return int(diff.sum())


def apply_steps(
    df: pd.DataFrame, steps: list[Step], *, row_id_column: str = "row_id"
) -> tuple[pd.DataFrame, list[StepReport]]:
    """Run steps in order on a copy of `df`; return the cleaned frame and one report per step.

    The copies are shallow: pandas' copy-on-write (always on from pandas 3) copies a column only
    when a step writes to it, so `df` and each step's input stay unchanged without copying every
    column of a million-row batch once per step."""
    if row_id_column not in df.columns:
        raise InputError(f"cleaning: data has no row id column {row_id_column!r}; expected ingest to assign one")
    out = df.copy(deep=False)
    reports: list[StepReport] = []
    for step in steps:
        before = out
        rep = StepReport(index=step.index, step=step.name, params=step.params.model_dump(),
                         rows_in=len(before), rows_out=len(before))
        cols = [c for c in step.columns(before, row_id_column) if c in before.columns]
        out = step.run(before.copy(deep=False), rep, row_id_column)
        rep.rows_out = len(out)
        if len(out) < len(before):
            ids = before[row_id_column].to_numpy()
            rep.dropped_row_ids = ids[~np.isin(ids, out[row_id_column].to_numpy())].tolist()
        elif len(out) == len(before):
            rep.values_changed = sum(
                _changed(before[c].reset_index(drop=True), out[c].reset_index(drop=True))
                for c in cols if c in out.columns
            )
        reports.append(rep)
    return out.reset_index(drop=True), reports
