"""DataFrame -> tensors for DP training.

Why a dedicated, picklable encoder: the same transformation must be applied at
training time, at evaluation time and later at inference time from the saved
model alone, so every statistic and vocabulary lives in one object saved next to
the weights. Categoricals become integer codes for embeddings (index 0 of every
field is reserved for "unknown, missing or undeclared") or one-hot columns.

Why declarations by default: the encoder ships inside the model bundle, so
whatever it holds is released. A vocabulary fitted on the training rows
releases every rare category (one person's value), and a mean or standard
deviation changes when one person joins. `from_declarations` builds the
encoder from public declarations only (the quality suite's value sets and
ranges): vocabularies are the declared sets in declared order, numerics are
clipped to the declared range, centred on its midpoint and scaled by its
half-width. `fit` (statistics of the data, no noise) remains for comparisons and
internal, never-released uses; a governed run uses it only when the pipeline
says `encoder: fit_on_data`, and the model card then says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import InputError

_TRUE_LABELS = {"1", "true", "yes", "y", "t", "positive", "pos"}


def _label_key(value: Any) -> str:
    return str(value).strip()


def category_key(value: Any) -> str:
    """One spelling per category: a declared 1 and a stored 1.0 are the same value."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _declared_range(column: str, declared: Any) -> tuple[float, float]:
    """(min, max) of a declaration `[min, max]`, checked to be a finite interval."""
    try:
        lo, hi = (float(v) for v in declared)
    except (TypeError, ValueError):
        raise InputError(f"feature {column!r}: declared range must be [min, max]") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise InputError(f"feature {column!r}: declared range [{lo}, {hi}] is not a finite interval")
    return lo, hi


def check_declared(features: list[str], categorical: list[str] | None, vocabularies: dict[str, Any],
                   ranges: dict[str, Any]) -> None:
    """Refuse the first feature without a public declaration, in one line naming it.

    A categorical feature needs a value set, a numeric one a range; with
    `categorical=None` (types not known yet) either declaration will do."""
    for c in features:
        if categorical is None:
            if c in vocabularies or c in ranges:
                continue
            kind = "a value set (expect_column_values_to_be_in_set) or a range (expect_column_values_to_be_between)"
        elif c in categorical:
            if c in vocabularies:
                continue
            kind = "a value set (expect_column_values_to_be_in_set)"
        else:
            if c in ranges:
                continue
            kind = "a range (expect_column_values_to_be_between with min_value and max_value)"
        raise InputError(f"feature {c!r} has no public declaration: declare {kind} in the quality suite, or set "
                         "the training option `encoder: fit_on_data` (its statistics are then NOT covered by epsilon)")


def category_keys(col: pd.Series) -> pd.Series:
    """`category_key` of every value of a column (float columns need the per-value rule)."""
    if pd.api.types.is_float_dtype(col.dtype):
        return col.map(category_key, na_action="ignore")
    return col.astype(str)


@dataclass
class FeatureEncoder:
    """Fitted feature transform: numerics standardized, categoricals coded.

    Categorical codes: field f, value v -> offsets[f] + 1 + vocab_index(v);
    offsets[f] + 0 is the reserved unknown/missing slot of that field. With
    `categorical_encoding="onehot"` the same codes are expanded to one-hot
    columns appended after the numerics instead.
    """

    target: str
    numeric: list[str]
    categorical: list[str]
    positive_label: str
    categorical_encoding: str = "embedding"
    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    # Declared [min, max] per numeric column: values are clipped to it before scaling.
    clip: dict[str, list[float]] = field(default_factory=dict)
    source: str = "fit_on_data"  # "declared" (public declarations only) or "fit_on_data"

    # ---------------------------------------------------------- declared
    @classmethod
    def from_declarations(
        cls,
        df: pd.DataFrame,
        target: str,
        features: list[str] | None = None,
        categorical: list[str] | None = None,
        *,
        vocabularies: dict[str, list[Any]],
        ranges: dict[str, tuple[float, float]],
        positive_label: Any = None,
        categorical_encoding: str = "embedding",
        exclude: tuple[str, ...] = (),
    ) -> "FeatureEncoder":
        """Encoder from public declarations only; a feature without one is refused.

        `df` is consulted for column names and dtypes (which columns are
        categorical when `categorical` is not given) and the target's labels,
        never for a statistic or a vocabulary."""
        features, categorical, numeric = cls._columns(df, target, features, categorical, categorical_encoding,
                                                      exclude)
        check_declared(features, categorical, vocabularies, ranges)
        pos = cls._resolve_positive(df[target], positive_label)
        means, stds, clip = [], [], {}
        for c in numeric:
            lo, hi = _declared_range(c, ranges[c])
            clip[c] = [lo, hi]
            half = (hi - lo) / 2.0
            means.append((lo + hi) / 2.0)
            stds.append(half if half > 1e-12 else 1.0)
        vocabs: dict[str, list[str]] = {}
        for c in categorical:
            seen: dict[str, None] = {}
            for v in vocabularies[c]:
                if v is not None:
                    seen.setdefault(category_key(v), None)
            vocabs[c] = list(seen)
        return cls(target, numeric, list(categorical), pos, categorical_encoding, means, stds, vocabs, clip,
                   "declared")

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        target: str,
        features: list[str] | None = None,
        categorical: list[str] | None = None,
        *,
        positive_label: Any = None,
        categorical_encoding: str = "embedding",
        exclude: tuple[str, ...] = (),
        numeric_stats: dict[str, tuple[float, float]] | None = None,
        vocabularies: dict[str, list[str]] | None = None,
    ) -> "FeatureEncoder":
        """Statistics and vocabularies of `df` (the train split only), without noise.

        Not for release: what it returns is computed from private rows. Use
        `from_declarations` for anything that leaves the platform."""
        features, categorical, numeric = cls._columns(df, target, features, categorical, categorical_encoding,
                                                      exclude)
        pos = cls._resolve_positive(df[target], positive_label)
        means, stds = [], []
        for c in numeric:
            if numeric_stats and c in numeric_stats:
                m, s = numeric_stats[c]
            else:
                col = pd.to_numeric(df[c], errors="coerce").astype("float64")
                m = float(col.mean()) if col.notna().any() else 0.0
                s = float(col.std(ddof=0)) if col.notna().sum() > 1 else 1.0
            means.append(float(m))
            stds.append(float(s) if s and np.isfinite(s) and s > 1e-12 else 1.0)
        vocabs: dict[str, list[str]] = {}
        for c in categorical:
            if vocabularies and c in vocabularies:
                vocabs[c] = [str(v) for v in vocabularies[c]]
            else:
                vals = category_keys(df[c].dropna()).unique().tolist()
                vocabs[c] = sorted(vals)
        return cls(target, numeric, list(categorical), pos, categorical_encoding, means, stds, vocabs, {},
                   "fit_on_data")

    @staticmethod
    def _columns(df: pd.DataFrame, target: str, features: list[str] | None, categorical: list[str] | None,
                 categorical_encoding: str, exclude: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
        """(features, categorical, numeric): checked against the frame's columns and dtypes."""
        if target not in df.columns:
            raise InputError(f"target: column {target!r} not in data (columns: {list(df.columns)[:20]})")
        if categorical_encoding not in ("embedding", "onehot"):
            raise InputError("categorical_encoding: expected 'embedding' or 'onehot'")
        if features is None:
            features = [c for c in df.columns if c != target and c not in exclude]
        missing = [c for c in features if c not in df.columns]
        if missing:
            raise InputError(f"features: columns {missing} not in data")
        if target in features:
            raise InputError(f"features: the target column {target!r} cannot also be a feature")
        if categorical is None:
            categorical = [
                c for c in features
                if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
            ]
        bad = [c for c in categorical if c not in features]
        if bad:
            raise InputError(f"categorical: columns {bad} are not in features")
        numeric = [c for c in features if c not in categorical]
        for c in numeric:
            if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
                raise InputError(f"features: column {c!r} is not numeric; list it in categorical")
        return list(features), list(categorical), numeric

    @staticmethod
    def _resolve_positive(y: pd.Series, positive_label: Any) -> str:
        values = sorted({_label_key(v) for v in y.dropna().unique()})
        if positive_label is not None:
            key = _label_key(positive_label)
            if key not in values:
                raise InputError(f"positive_label: {positive_label!r} not among target values {values[:10]}")
            return key
        if len(values) == 0:
            raise InputError("target: column has no non-missing values")
        lowered = {v.lower() for v in values}
        if lowered <= {"0", "1", "0.0", "1.0", "true", "false"}:
            return next(v for v in values if v.lower() in {"1", "1.0", "true"}) if lowered & {"1", "1.0", "true"} else values[-1]
        if len(values) != 2:
            raise InputError(
                f"target: {len(values)} distinct values; set positive_label to binarize (one of {values[:10]})"
            )
        return values[-1]  # deterministic: lexicographically last label is the positive class

    # ------------------------------------------------------------ transform
    @property
    def cardinalities(self) -> list[int]:
        """Rows per field in the embedding table, including the reserved slot."""
        return [len(self.vocabularies[c]) + 1 for c in self.categorical]

    @property
    def offsets(self) -> list[int]:
        out, acc = [], 0
        for card in self.cardinalities:
            out.append(acc)
            acc += card
        return out

    @property
    def n_numeric(self) -> int:
        extra = sum(self.cardinalities) if self.categorical_encoding == "onehot" else 0
        return len(self.numeric) + extra

    @property
    def embedding_cardinalities(self) -> list[int]:
        return self.cardinalities if self.categorical_encoding == "embedding" else []

    def codes(self, df: pd.DataFrame) -> np.ndarray:
        """Global categorical codes (n, F) with per-field offsets; 0-slot = unknown."""
        n = len(df)
        out = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, (c, off) in enumerate(zip(self.categorical, self.offsets)):
            if c not in df.columns:
                raise InputError(f"features: column {c!r} missing from the data to encode")
            lookup = {v: i + 1 for i, v in enumerate(self.vocabularies[c])}
            col = df[c]
            vals = category_keys(col).map(lookup)
            vals = vals.where(col.notna(), 0).fillna(0).astype(np.int64).to_numpy()
            out[:, j] = off + vals
        return out

    def transform(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(x_num float32 (n, d), x_cat int64 (n, F), y int64 (n,) or None if no target)."""
        n = len(df)
        num = np.zeros((n, len(self.numeric)), dtype=np.float32)
        for j, c in enumerate(self.numeric):
            if c not in df.columns:
                raise InputError(f"features: column {c!r} missing from the data to encode")
            col = pd.to_numeric(df[c], errors="coerce").astype("float64").to_numpy()
            if c in self.clip:  # declared range: a value outside it says nothing more than the bound
                col = np.clip(col, self.clip[c][0], self.clip[c][1])
            z = (col - self.means[j]) / self.stds[j]
            num[:, j] = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
        codes = self.codes(df)
        if self.categorical_encoding == "onehot":
            onehot = np.zeros((n, sum(self.cardinalities)), dtype=np.float32)
            if codes.size:
                np.put_along_axis(onehot, codes, 1.0, axis=1)
            num = np.concatenate([num, onehot], axis=1)
            codes = np.zeros((n, 0), dtype=np.int64)
        y = None
        if self.target in df.columns:
            y = np.array([_label_key(v) == self.positive_label for v in df[self.target]], dtype=np.int64)
        return num, codes, y

    def to_dict(self) -> dict[str, Any]:
        """Plain description for the model card (no data values beyond vocabularies)."""
        return {
            "target": self.target,
            "positive_label": self.positive_label,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "categorical_encoding": self.categorical_encoding,
            "statistics": ("public declarations (quality suite value sets and ranges); nothing fitted on data"
                           if self.source == "declared" else
                           "fitted on the train split without noise: NOT covered by epsilon"),
        }

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the encoder: plain JSON types only, so a
        stored model can be loaded without unpickling (`torch.load(weights_only=True)`)."""
        return {
            "target": self.target, "numeric": list(self.numeric), "categorical": list(self.categorical),
            "positive_label": self.positive_label, "categorical_encoding": self.categorical_encoding,
            "means": [float(m) for m in self.means], "stds": [float(s) for s in self.stds],
            "vocabularies": {k: [str(v) for v in vs] for k, vs in self.vocabularies.items()},
            "clip": {k: [float(v) for v in vs] for k, vs in self.clip.items()},
            "source": self.source,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "FeatureEncoder":
        try:
            enc = cls(**state)
        except TypeError as exc:
            raise InputError(f"encoder state: unexpected fields ({exc})") from None
        if len(enc.means) != len(enc.numeric) or len(enc.stds) != len(enc.numeric):
            raise InputError("encoder state: means/stds must have one value per numeric column")
        missing = [c for c in enc.categorical if c not in enc.vocabularies]
        if missing:
            raise InputError(f"encoder state: no vocabulary for categorical column(s) {missing}")
        if enc.source not in ("declared", "fit_on_data"):
            raise InputError(f"encoder state: source must be 'declared' or 'fit_on_data', got {enc.source!r}")
        return enc
