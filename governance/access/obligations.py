"""Enforce a decision's obligations on data before it leaves privgov.

Why separate from the engine: `policies/` decides (pure, no data); this module
is where a decision meets a DataFrame. Masks: `drop` removes the column, `hash`
replaces values by keyed HMAC pseudonyms (joinable, not reversible without the
key), `partial` keeps a short prefix (e.g. ZIP 941**) and masks the rest.
"""
from __future__ import annotations

import pandas as pd

from policies.engine import Obligations, row_filter_mask
from privacy.deid import pseudonymize
from privacy.errors import InputError


def _partial(col: pd.Series, keep: int = 3) -> pd.Series:
    s = col.astype("string")
    return s.str.slice(0, keep) + s.str.slice(keep).str.replace(r".", "*", regex=True)


def apply_obligations(df: pd.DataFrame, obligations: Obligations, *, key: bytes) -> pd.DataFrame:
    """Row filter first (it may read a column that is then masked), then masks."""
    out = df[row_filter_mask(obligations.row_filter, df)].copy()
    for column, mask in obligations.column_masks.items():
        if column not in out.columns:
            continue  # already dropped or de-identified upstream: nothing to reveal
        if mask == "drop":
            out = out.drop(columns=[column])
        elif mask == "hash":
            out[column] = pseudonymize(out[column], key, domain=f"mask:{column}")
        elif mask == "partial":
            out[column] = _partial(out[column])
        else:
            raise InputError(f"policy mask for column `{column}`: unknown kind {mask!r} (expected drop, hash, partial)")
    return out.reset_index(drop=True)
