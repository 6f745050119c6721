"""Vectorized string building for the synthetic data (pyarrow compute, no per-row Python).

Why: emails, phone numbers and SSNs for millions of rows are assembled from
integer draws; doing that in Python loops would dominate generation time.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def digits(values) -> pa.Array:
    """Integers -> decimal strings."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def padded(values, width: int) -> pa.Array:
    """Integers -> zero-padded decimal strings of ``width`` characters."""
    return pc.utf8_lpad(digits(values), width=width, padding="0")


def join(*parts) -> pa.Array:
    """Concatenate string arrays and scalars element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def lookup(vocab, codes) -> pa.Array:
    """``vocab[code]`` for each code."""
    return pa.array(list(vocab), type=pa.string()).take(pa.array(np.asarray(codes, dtype=np.int32)))
