"""Public declarations of a dataset: what may be known about it without looking at it.

Why: anything a trained model, its card or its report carries is released. The
feature encoder needs a vocabulary per categorical column and a scale per
numeric one; fitted on the training rows they publish rare values (one
person's native country) and statistics one person can move. The quality
suite already declares the domain of each column - `value_set`s and
`min_value`/`max_value` bounds written by a person from the meaning of the
field - and the table's size bound. Those declarations are public; this module
reads them and carries them through the pipeline's declared de-identification
steps, so the encoder can be built from them alone.

Carrying through the steps: `drop` and `pseudonymize` remove a column's
declaration (pseudonyms are not a declared domain); `generalize` maps it where
the output is derivable from the declaration alone - `age_band` over a declared
range gives exactly the labels `privacy.deid` produces for that range's
integers, `zip_prefix` with at most 3 digits has a finite public output set,
`round` rounds the bounds - and otherwise makes the column undeclared.
`suppress_rare` adds its `other` label.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Expectation types whose kwargs declare a column's domain or the table's size.
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
ROWS_BETWEEN = "expect_table_row_count_to_be_between"
ROWS_EQUAL = "expect_table_row_count_to_equal"
MAX_ZIP_DIGITS = 3  # 10**3 labels at most; longer prefixes are not enumerated


@dataclass(frozen=True)
class Declarations:
    """Per-column public domains and the table's declared size bound."""

    vocabularies: dict[str, list[Any]] = field(default_factory=dict)  # column -> declared values, in order
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # column -> (min, max)
    max_rows: int | None = None  # declared upper bound on the table's rows

    def for_columns(self, columns: list[str]) -> "Declarations":
        """Only the declarations of `columns` (what the stored version still has)."""
        keep = set(columns)
        return replace(self, vocabularies={c: v for c, v in self.vocabularies.items() if c in keep},
                       ranges={c: r for c, r in self.ranges.items() if c in keep})


def from_suite(suite: dict[str, Any]) -> Declarations:
    """Declarations of a parsed GX 1.x suite (`governance.data.quality.load_suite`).

    Several expectations on one column must all hold, so value sets intersect
    (first set's order) and ranges narrow. Conditional expectations
    (`row_condition`) and one-sided bounds declare nothing about the whole column.
    `mostly` does not weaken a range: the encoder clips values outside it, so a
    range that holds for most rows is a valid (public) scale for all of them."""
    vocab: dict[str, list[Any]] = {}
    ranges: dict[str, tuple[float, float]] = {}
    max_rows: int | None = None
    for exp in suite.get("expectations", []):
        etype, kw = exp.get("type"), exp.get("kwargs", {})
        if kw.get("row_condition") is not None:
            continue
        col = kw.get("column")
        if etype == IN_SET and col is not None:
            values = [v for v in kw.get("value_set") or [] if v is not None]
            vocab[col] = [v for v in vocab[col] if v in values] if col in vocab else list(dict.fromkeys(values))
        elif etype == BETWEEN and col is not None:
            lo, hi = kw.get("min_value"), kw.get("max_value")
            if lo is None or hi is None or isinstance(lo, bool) or isinstance(hi, bool):
                continue
            lo, hi = float(lo), float(hi)
            if col in ranges:
                lo, hi = max(lo, ranges[col][0]), min(hi, ranges[col][1])
            ranges[col] = (lo, hi)
        elif etype in (ROWS_BETWEEN, ROWS_EQUAL):
            bound = kw.get("max_value") if etype == ROWS_BETWEEN else kw.get("value")
            if bound is not None and not isinstance(bound, bool):
                bound = int(math.floor(float(bound)))
                max_rows = bound if max_rows is None else min(max_rows, bound)
    return Declarations(vocabularies=vocab, ranges=ranges, max_rows=max_rows)


def after_deid(decl: Declarations, steps: list[dict[str, Any]]) -> Declarations:
    """The declarations as they hold after the declared de-identification `steps`, in order."""
    from privacy.deid.transforms import (
        AgeBandSpec, DropSpec, KeepSpec, PseudonymizeSpec, RoundSpec, SuppressRareSpec, ZipPrefixSpec, parse_specs,
    )

    vocab, ranges = dict(decl.vocabularies), dict(decl.ranges)
    for spec in parse_specs(steps):
        col = spec.column
        if isinstance(spec, KeepSpec):
            continue
        before_vocab, before_range = vocab.pop(col, None), ranges.pop(col, None)
        if isinstance(spec, (DropSpec, PseudonymizeSpec)):
            continue
        if isinstance(spec, SuppressRareSpec):
            if before_vocab is not None:
                vocab[col] = before_vocab + ([spec.other] if spec.other not in before_vocab else [])
        elif isinstance(spec, AgeBandSpec):
            labels = _age_bands(spec, before_vocab, before_range)
            if labels is not None:
                vocab[col] = labels
        elif isinstance(spec, ZipPrefixSpec):
            labels = _zip_prefixes(spec, before_vocab)
            if labels is not None:
                vocab[col] = labels
        elif isinstance(spec, RoundSpec):
            if before_range is not None:
                lo, hi = _rounded([before_range[0], before_range[1]], spec)
                ranges[col] = (float(lo), float(hi))
            if before_vocab is not None and all(_is_number(v) for v in before_vocab):
                vocab[col] = list(dict.fromkeys(_rounded(before_vocab, spec)))
        # date_truncate and anything else: derivable only from a declaration the suite
        # cannot make (dates have no numeric bounds), so the column is undeclared.
    return Declarations(vocabularies=vocab, ranges=ranges, max_rows=decl.max_rows)


def _generalized(values: list[Any], spec: Any) -> list[Any]:
    """`privacy.deid` applied to declared values: the very labels the data will carry."""
    import pandas as pd

    from privacy.deid.transforms import generalize

    params = {k: v for k, v in spec.model_dump().items() if k not in ("column", "action", "method")}
    out = generalize(pd.Series(values, dtype="object"), spec.method, **params)
    return [v for v in dict.fromkeys(out.tolist()) if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _age_bands(spec: Any, vocab: list[Any] | None, rng: tuple[float, float] | None) -> list[Any] | None:
    if rng is not None:
        lo, hi = max(0, math.floor(rng[0])), min(130, math.floor(rng[1]))  # age_band nulls values outside 0-130
        return _generalized(list(range(lo, hi + 1)), spec) if lo <= hi else []
    if vocab is not None and all(_is_number(v) for v in vocab):
        return _generalized(list(vocab), spec)
    return None


def _zip_prefixes(spec: Any, vocab: list[Any] | None) -> list[Any] | None:
    if vocab is not None:
        return _generalized([str(v) for v in vocab], spec)
    if spec.digits > MAX_ZIP_DIGITS:
        return None
    every = [str(i).zfill(spec.digits) + "0" * (5 - spec.digits) for i in range(10 ** spec.digits)]
    return _generalized(every, spec) if spec.digits else _generalized(["00000"], spec)


def _rounded(values: list[Any], spec: Any) -> list[Any]:
    import pandas as pd

    from privacy.deid.transforms import generalize

    out = generalize(pd.Series(values, dtype="float64"), "round", ndigits=spec.ndigits, base=spec.base)
    return [float(v) for v in out.tolist()]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def for_pipeline(suite_path: Path | None, deid_steps: list[dict[str, Any]]) -> Declarations:
    """Declarations of a pipeline: its suite's (none without a suite), after its de-identification steps."""
    if suite_path is None:
        return Declarations()
    from governance.data.quality import load_suite

    return after_deid(from_suite(load_suite(suite_path)), deid_steps)


# Steps whose effect on one row depends on other rows' values (counts or statistics).
_COUNT_BASED = {"suppress_rare", "suppress_below_k"}
_STATISTICAL_CLEANING = {"clip_outliers", "flag_outliers", "standardize", "normalize"}


def data_dependent_steps(steps: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(count-based suppression steps, statistics-based cleaning steps) recorded on a version.

    Why it matters: DP-SGD's epsilon is about the rows it trained on. When what
    became of one row depended on counts or statistics of the others (k-based
    suppression, rare-category suppression, mean imputation, outlier fences),
    adding one person to the raw file can change many stored rows, so epsilon
    covers the stored version and not the raw file."""
    counted, statistical = [], []
    for st in steps or []:
        name = st.get("action") if st.get("stage") == "deid" else st.get("step")
        if name == "suppress_rows":  # the k-anonymity suppression records itself this way
            name = st.get("step")
        if name in _COUNT_BASED:
            counted.append(f"{name}({st.get('column', '')})")
        elif name in _STATISTICAL_CLEANING or (
                name == "impute" and (st.get("params") or {}).get("strategy") in ("mean", "median", "mode")):
            statistical.append(str(name))
    return counted, statistical


def epsilon_covers(steps: list[dict[str, Any]]) -> str:
    """The model card's words for what the run's epsilon is a guarantee about."""
    counted, statistical = data_dependent_steps(steps)
    if counted:
        return "stored version (count-based suppression ran)"
    if statistical:
        return f"stored version (data-dependent cleaning ran: {', '.join(sorted(set(statistical)))})"
    return "raw data"
