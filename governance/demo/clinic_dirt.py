"""Realistic data-entry dirt planted in the synthetic clinic visits.

Why planted on purpose: the quality suite, the cleaning steps and quarantine
need something to find. Rates are per row (module constants, documented in
:mod:`governance.demo.sample_data`); the dirt is drawn after the label, so the
label always comes from the clean values. The draw order on ``rng`` is part of
the data's definition.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from governance.demo.arrow_text import join, lookup
from governance.demo.clinic_people import RACE_VALUES, SEX_VALUES

DUPLICATE_RATE = 0.01
MISSING_RATE = 0.02
MISSING_COLUMNS = ("email", "phone", "zip", "race", "bmi", "hba1c")
MALFORMED_EMAIL_RATE = 0.01
IMPOSSIBLE_AGE_RATE = 0.005
IMPOSSIBLE_AGES = (-3, -1, 150, 240, 999)
CATEGORY_SPELLING_RATE = 0.02
WHITESPACE_RATE = 0.02
WHITESPACE_COLUMNS = ("name", "email", "diagnosis_code")

_SEX_VARIANTS = (("F", "M"), ("f", "m"), ("Female", "Male"), ("Female ", "Male "), ("FEMALE", "MALE"))


def plant_dirt(rng: np.random.Generator, cols: dict[str, object]) -> np.ndarray:
    """Malformed emails, stray whitespace, missing values, respelled categories and
    impossible ages, in that order, into ``cols`` (changed in place).

    ``sex`` and ``race`` must still be codes; a respelling moves a code into the
    variant part of the vocabulary :func:`category_strings` uses. Returns the mask
    of rows whose race is present (a missing race is applied there).
    """
    nb = len(cols["visit_id"])
    race_valid = np.ones(nb, dtype=bool)
    # malformed emails
    m = rng.random(nb) < MALFORMED_EMAIL_RATE
    if m.any():
        sub_e = cols["email"].filter(pa.array(m))
        kind = pa.array(rng.integers(0, 4, int(m.sum())).astype(np.int8))
        bad = pc.choose(
            kind,
            pc.replace_substring(sub_e, "@", "", max_replacements=1),
            pc.replace_substring(sub_e, "@", "@@", max_replacements=1),
            pc.replace_substring(sub_e, "@", " at ", max_replacements=1),
            pc.replace_substring_regex(sub_e, r"\.[a-z]+$", ""),
        )
        cols["email"] = pc.replace_with_mask(cols["email"], pa.array(m), bad)
    # stray whitespace
    for c in WHITESPACE_COLUMNS:
        m = rng.random(nb) < WHITESPACE_RATE
        if m.any():
            sub_v = cols[c].filter(pa.array(m))
            kind = pa.array(rng.integers(0, 3, int(m.sum())).astype(np.int8))
            ws = pc.choose(kind, join(" ", sub_v), join(sub_v, " "), join("  ", sub_v, "\t"))
            cols[c] = pc.replace_with_mask(cols[c], pa.array(m), ws)
    # missing values
    for c in MISSING_COLUMNS:
        m = rng.random(nb) < MISSING_RATE
        if c == "race":
            race_valid = ~m
        elif isinstance(cols[c], np.ndarray):
            arr = cols[c].astype(np.float64)
            arr[m] = np.nan
            cols[c] = arr
        else:
            cols[c] = pc.if_else(pa.array(m), pa.scalar(None, pa.string()), cols[c])
    # category spelling
    m = rng.random(nb) < CATEGORY_SPELLING_RATE
    v = rng.integers(0, len(_SEX_VARIANTS), nb)
    cols["sex"] = np.where(m, 2 + 2 * v + cols["sex"], cols["sex"])
    m = rng.random(nb) < CATEGORY_SPELLING_RATE
    v = rng.integers(1, 5, nb)
    cols["race"] = np.where(m, v * len(RACE_VALUES) + cols["race"], cols["race"])
    # impossible ages
    m = rng.random(nb) < IMPOSSIBLE_AGE_RATE
    bad_age = np.asarray(IMPOSSIBLE_AGES, dtype=np.int64)[rng.integers(0, len(IMPOSSIBLE_AGES), nb)]
    cols["age"] = np.where(m, bad_age, cols["age"])
    return race_valid


def category_strings(cols: dict[str, object], race_valid: np.ndarray) -> None:
    """Turn the ``sex`` and ``race`` codes in ``cols`` into strings (canonical or respelled)."""
    sex_vocab: list[str] = list(SEX_VALUES)
    for pair in _SEX_VARIANTS:
        sex_vocab.extend(pair)
    race_vocab: list[str] = list(RACE_VALUES)
    for fn in (str.capitalize, str.upper, lambda s: s + " ", lambda s: " " + s.capitalize()):
        race_vocab.extend(fn(r) for r in RACE_VALUES)
    cols["sex"] = lookup(sex_vocab, cols["sex"])
    race_arr = lookup(race_vocab, cols["race"])
    if not race_valid.all():
        race_arr = pc.if_else(pa.array(race_valid), race_arr, pa.scalar(None, pa.string()))
    cols["race"] = race_arr


def plant_duplicates(rng: np.random.Generator, table: pa.Table, n_dup: int) -> pa.Table:
    """Append ``n_dup`` exact copies of random (already dirty) rows, scattered through the table."""
    nb = table.num_rows
    src = rng.integers(0, nb, n_dup)
    keys = np.concatenate([np.arange(nb, dtype=np.float64), rng.uniform(0, nb, n_dup)])
    idx = np.concatenate([np.arange(nb), src])[np.argsort(keys, kind="stable")]
    return table.take(pa.array(idx))
