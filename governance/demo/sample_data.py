"""Deterministic synthetic clinic-visit data (with realistic dirt) for demos, tests and benchmarks.

``generate_clinic(rows, seed)`` returns one row per clinic visit. The privacy unit is the
patient (``patient_id``): a patient has a geometric number of visits (p = 1/3, mean 3,
truncated for the last patient of a chunk). Patient attributes -- ``name``, ``email``,
``phone``, ``ssn``, ``date_of_birth``, ``zip``, ``sex``, ``race`` -- are drawn once per patient
and are identical on all of that patient's visits (exactly so with ``dirty=False``; the
planted dirt below is row-level data-entry noise and may touch single visits).

Everything is vectorized (numpy + pyarrow compute; no per-row Python) and generated in
chunks of ``CHUNK_ROWS`` rows, each chunk from ``numpy.random.default_rng([seed, chunk])``,
so output is a pure function of ``(rows, seed, dirty)`` and ``write_clinic`` can stream 10M+
rows to CSV/Parquet with memory bounded by one chunk. ``write_clinic(path, n, seed)`` writes
exactly the rows of ``generate_clinic(n, seed)``.

Columns (pandas dtypes of ``generate_clinic``)::

    visit_id          int64           unique per visit (before planted duplicates); increases with visit_date within a chunk
    patient_id        int64           privacy unit, 10_000_001 + patient index
    name              str             "First Last" from privacy/deid/names.txt (first name matches sex)
    email             str             first.last42@gmail.com style, lower case
    phone             str             valid NANP, mixed formats: (617) 555-0134, 617-555-0134, 617.555.0134,
                                      +1 617 555 0134, +16175550134
    ssn               str             AAA-GG-SSSS, area 001-899 except 666, group 01-99, serial 0001-9999
    date_of_birth     datetime64[ms]
    zip               str             5-digit US ZIP (leading zeros kept), Zipf-weighted over a pool of 3000
    sex               str             canonical "female" / "male"
    race              str             canonical "white", "black", "hispanic", "asian", "other"
    age               int64           whole years at visit_date, consistent with date_of_birth
    visit_date        datetime64[ms]  2019-01-01 onwards
    bmi               float64         kg/m^2, one decimal
    systolic_bp       int64           mmHg
    hba1c             float64         %, one decimal
    num_prior_visits  int64
    los_days          int64           length of stay, >= 1
    num_medications   int64
    diagnosis_code    str             ICD-10-CM-like, e.g. "E11.9", "I10", "S72.001A"
    readmitted_30d    int64           0/1 label, see the model below

Label model (drawn from the clean feature values, before any dirt)::

    logit P(readmitted_30d = 1) =
          READMIT_INTERCEPT                                  (-5.0)
        + 0.45 * (age - 50) / 10
        + 0.40 * (bmi - 28) / 5
        + 0.30 * (systolic_bp - 130) / 20
        + 0.80 * (hba1c - 6)
        + 0.30 * num_prior_visits
        + 0.70 * los_days
        + 0.22 * num_medications

(``READMIT_COEFFICIENTS``; roughly 29% positives, Bayes-optimal accuracy about 0.84 --
a logistic regression on these seven features recovers it). ``readmission_probability(df)``
recomputes the true probabilities from the feature columns and ``clinic_bayes_accuracy(df)``
is the best accuracy any classifier can reach on ``df`` in expectation, mean(max(p, 1 - p)),
over rows whose features are present and plausible.

Planted dirt (``dirty=True``; rates are per row, module constants):

    DUPLICATE_RATE          1%    exact duplicate rows (same visit_id), scattered through the chunk
    MISSING_RATE            2%    null in each of MISSING_COLUMNS (email, phone, zip, race, bmi, hba1c)
    MALFORMED_EMAIL_RATE    1%    "@" dropped / doubled / " at ", or the top-level domain cut off
    IMPOSSIBLE_AGE_RATE     0.5%  age replaced by one of IMPOSSIBLE_AGES (-3, -1, 150, 240, 999)
    CATEGORY_SPELLING_RATE  2%    sex (and, separately, race) spelled non-canonically:
                                  F / f / Female / "Female " / FEMALE, White / WHITE / "white " ...
    WHITESPACE_RATE         2%    leading/trailing stray whitespace in each of WHITESPACE_COLUMNS
                                  (name, email, diagnosis_code)

Dirt is applied in that order after the label is drawn (so a later step can overwrite an
earlier one on the same cell, e.g. a malformed email later set to null); duplicates copy
the already dirty row.

This module assembles and writes the table; the parts live beside it:
:mod:`~governance.demo.clinic_people` (patients and their identity attributes),
:mod:`~governance.demo.clinic_visits` (visits, clinical features, the label model) and
:mod:`~governance.demo.clinic_dirt` (the planted dirt). Their names are re-exported here,
the one import callers need.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from governance.demo.clinic_dirt import (
    CATEGORY_SPELLING_RATE,
    DUPLICATE_RATE,
    IMPOSSIBLE_AGE_RATE,
    IMPOSSIBLE_AGES,
    MALFORMED_EMAIL_RATE,
    MISSING_COLUMNS,
    MISSING_RATE,
    WHITESPACE_COLUMNS,
    WHITESPACE_RATE,
    category_strings,
    plant_dirt,
    plant_duplicates,
)
from governance.demo.clinic_people import RACE_VALUES, SEX_VALUES, draw_patients
from governance.demo.clinic_visits import (
    CLINIC_FEATURES,
    READMIT_COEFFICIENTS,
    READMIT_INTERCEPT,
    clinic_bayes_accuracy,
    draw_visits,
    readmission_probability,
    visits_per_patient,
)
from governance.storage.atomic_write import atomic_path

__all__ = [
    "CHUNK_ROWS",
    "DUPLICATE_RATE",
    "MISSING_RATE",
    "MISSING_COLUMNS",
    "MALFORMED_EMAIL_RATE",
    "IMPOSSIBLE_AGE_RATE",
    "IMPOSSIBLE_AGES",
    "CATEGORY_SPELLING_RATE",
    "WHITESPACE_RATE",
    "WHITESPACE_COLUMNS",
    "READMIT_INTERCEPT",
    "READMIT_COEFFICIENTS",
    "CLINIC_FEATURES",
    "CLINIC_COLUMNS",
    "PATIENT_ATTRIBUTES",
    "SEX_VALUES",
    "RACE_VALUES",
    "generate_clinic",
    "iter_clinic_chunks",
    "write_clinic",
    "readmission_probability",
    "clinic_bayes_accuracy",
    "sample_generators",
    "sample_writers",
]

CHUNK_ROWS = 1_000_000

CLINIC_COLUMNS = (
    "visit_id", "patient_id", "name", "email", "phone", "ssn", "date_of_birth", "zip",
    "sex", "race", "age", "visit_date", "bmi", "systolic_bp", "hba1c", "num_prior_visits",
    "los_days", "num_medications", "diagnosis_code", "readmitted_30d",
)
PATIENT_ATTRIBUTES = ("name", "email", "phone", "ssn", "date_of_birth", "zip", "sex", "race")

_SCHEMA = pa.schema([
    ("visit_id", pa.int64()), ("patient_id", pa.int64()), ("name", pa.string()),
    ("email", pa.string()), ("phone", pa.string()), ("ssn", pa.string()),
    ("date_of_birth", pa.date32()), ("zip", pa.string()), ("sex", pa.string()),
    ("race", pa.string()), ("age", pa.int64()), ("visit_date", pa.date32()),
    ("bmi", pa.float64()), ("systolic_bp", pa.int64()), ("hba1c", pa.float64()),
    ("num_prior_visits", pa.int64()), ("los_days", pa.int64()), ("num_medications", pa.int64()),
    ("diagnosis_code", pa.string()), ("readmitted_30d", pa.int64()),
])


# ---- one chunk ------------------------------------------------------------------------------
def _chunk_table(n: int, seed: int, chunk: int, row_offset: int, dirty: bool) -> pa.Table:
    """Rows ``row_offset .. row_offset + n`` of the dataset, from ``default_rng([seed, chunk])``."""
    rng = np.random.default_rng([seed, chunk])
    n_dup = int(round(n * DUPLICATE_RATE)) if dirty else 0
    nb = n - n_dup
    if nb <= 0:
        nb, n_dup = n, 0
    counts = visits_per_patient(rng, nb)
    patients = draw_patients(rng, len(counts), row_offset, seed)
    cols = draw_visits(rng, patients, counts, row_offset)
    race_valid = plant_dirt(rng, cols) if dirty else np.ones(nb, dtype=bool)
    category_strings(cols, race_valid)
    for c in ("date_of_birth", "visit_date"):
        cols[c] = pa.array(cols[c].astype(np.int32), type=pa.int32()).cast(pa.date32())
    arrays = [cols[f.name] if isinstance(cols[f.name], (pa.Array, pa.ChunkedArray))
              else pa.array(cols[f.name], type=f.type, from_pandas=True) for f in _SCHEMA]
    table = pa.Table.from_arrays(arrays, schema=_SCHEMA)
    return plant_duplicates(rng, table, n_dup) if n_dup else table


# ---- public API --------------------------------------------------------------------------------
def _check(rows: int, seed: int, chunk_rows: int) -> None:
    from privacy.errors import InputError

    if not isinstance(rows, (int, np.integer)) or isinstance(rows, bool) or rows < 0:
        raise InputError(f"rows: expected a non-negative integer, got {rows!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise InputError(f"chunk_rows: expected a positive integer, got {chunk_rows!r}")


def iter_clinic_chunks(rows: int, seed: int = 0, *, dirty: bool = True,
                       chunk_rows: int = CHUNK_ROWS):
    """Yield the clinic data as ``pyarrow.Table`` chunks of at most ``chunk_rows`` rows."""
    _check(rows, seed, chunk_rows)
    n_chunks = max(1, math.ceil(rows / chunk_rows))
    for i in range(n_chunks):
        lo, hi = i * chunk_rows, min(rows, (i + 1) * chunk_rows)
        if hi <= lo:
            yield _SCHEMA.empty_table()
            return
        yield _chunk_table(hi - lo, int(seed), i, lo, dirty)


def generate_clinic(rows: int, seed: int = 0, *, dirty: bool = True,
                    chunk_rows: int = CHUNK_ROWS) -> pd.DataFrame:
    """Return ``rows`` synthetic clinic visits as a DataFrame (see the module docstring)."""
    table = pa.concat_tables(list(iter_clinic_chunks(rows, seed, dirty=dirty, chunk_rows=chunk_rows)))
    return table.to_pandas(date_as_object=False)


def write_clinic(path: str | Path, rows: int, seed: int = 0, *, dirty: bool = True,
                 chunk_rows: int = CHUNK_ROWS) -> Path:
    """Stream ``generate_clinic(rows, seed)`` to ``path``: ``.csv`` / ``.csv.gz`` or ``.parquet``/``.pq``.

    Memory is bounded by one chunk. The file is written to a temp name and renamed.
    """
    from privacy.errors import InputError

    path = Path(path)
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        kind = "parquet"
    elif name.endswith((".csv", ".csv.gz")):
        kind = "csv"
    else:
        raise InputError(f"{path}: expected a .csv, .csv.gz, .parquet or .pq file name")
    _check(rows, seed, chunk_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    chunks = iter_clinic_chunks(rows, seed, dirty=dirty, chunk_rows=chunk_rows)
    with atomic_path(path) as tmp:
        if kind == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetWriter(tmp, _SCHEMA, compression="zstd") as w:
                for t in chunks:
                    w.write_table(t)
        else:
            import pyarrow.csv as pacsv

            opts = pacsv.WriteOptions(include_header=True, quoting_style="needed")
            sink = pa.OSFile(str(tmp), "wb")
            if name.endswith(".gz"):
                sink = pa.CompressedOutputStream(sink, "gzip")
            with sink, pacsv.CSVWriter(sink, _SCHEMA, write_options=opts) as w:
                for t in chunks:
                    w.write_table(t)
    return path


sample_generators: dict[str, Callable[..., pd.DataFrame]] = {"clinic": generate_clinic}
sample_writers: dict[str, Callable[..., Path]] = {"clinic": write_clinic}
