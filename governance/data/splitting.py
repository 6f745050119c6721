"""Held-out split by privacy unit.

Why by unit: if one patient's visits land on both sides, the test set is not
held out for that person and accuracy is inflated. The split is a pure function
of (unit ids, fraction, seed); its sizes are recorded as metadata when the
version is stored (`train_split_stats`), so the budget can be reserved before
any data is decrypted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SPLIT_COLUMN = "split"  # set by sources that ship their own test file (e.g. adult.test)


def n_test_units(n_units: int, test_fraction: float) -> int:
    return int(min(max(1, round(n_units * test_fraction)), max(n_units - 1, 0)))


def split_by_unit(
    df: pd.DataFrame, unit_column: str | None, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/test frames with no unit on both sides; rows without a unit column are their own unit."""
    units = df[unit_column].to_numpy() if unit_column else np.arange(len(df))
    unique = np.unique(units)
    rng = np.random.default_rng(seed)
    test_units = rng.permutation(unique)[: n_test_units(len(unique), test_fraction)]
    is_test = np.isin(units, test_units)
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)


def train_split_stats(train: pd.DataFrame, unit_column: str | None) -> dict[str, int]:
    """What the privacy plan needs, recorded as metadata before encryption:
    units and rows of the train side and the largest number of rows one unit has."""
    if unit_column is None or len(train) == 0:
        return {"units": int(len(train)), "rows": int(len(train)), "max_rows_per_unit": 1}
    sizes = train[unit_column].value_counts(dropna=False)
    return {"units": int(sizes.size), "rows": int(len(train)), "max_rows_per_unit": int(sizes.max())}


def split_for_training(df: pd.DataFrame, unit_column: str | None, test_fraction: float, seed: int
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split a training run used: the source's own `split` column if present, else by unit.

    Shared by the pipeline and `privgov audit-model`, which must see exactly
    the members and non-members of the run it audits."""
    if SPLIT_COLUMN in df.columns:
        return (df[df[SPLIT_COLUMN] == "train"].reset_index(drop=True),
                df[df[SPLIT_COLUMN] == "test"].reset_index(drop=True))
    return split_by_unit(df, unit_column, test_fraction, seed)
