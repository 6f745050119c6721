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
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from governance.storage.atomic_write import atomic_path
from privacy.deid.names import load_names

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

# ---- dirt rates (per row) ---------------------------------------------------------
DUPLICATE_RATE = 0.01
MISSING_RATE = 0.02
MISSING_COLUMNS = ("email", "phone", "zip", "race", "bmi", "hba1c")
MALFORMED_EMAIL_RATE = 0.01
IMPOSSIBLE_AGE_RATE = 0.005
IMPOSSIBLE_AGES = (-3, -1, 150, 240, 999)
CATEGORY_SPELLING_RATE = 0.02
WHITESPACE_RATE = 0.02
WHITESPACE_COLUMNS = ("name", "email", "diagnosis_code")

# ---- label model -------------------------------------------------------------------
READMIT_INTERCEPT = -5.0
# feature -> (coefficient, center, scale): term = coef * (x - center) / scale
READMIT_COEFFICIENTS: dict[str, tuple[float, float, float]] = {
    "age": (0.45, 50.0, 10.0),
    "bmi": (0.40, 28.0, 5.0),
    "systolic_bp": (0.30, 130.0, 20.0),
    "hba1c": (0.80, 6.0, 1.0),
    "num_prior_visits": (0.30, 0.0, 1.0),
    "los_days": (0.70, 0.0, 1.0),
    "num_medications": (0.22, 0.0, 1.0),
}
CLINIC_FEATURES = tuple(READMIT_COEFFICIENTS)

CLINIC_COLUMNS = (
    "visit_id", "patient_id", "name", "email", "phone", "ssn", "date_of_birth", "zip",
    "sex", "race", "age", "visit_date", "bmi", "systolic_bp", "hba1c", "num_prior_visits",
    "los_days", "num_medications", "diagnosis_code", "readmitted_30d",
)
PATIENT_ATTRIBUTES = ("name", "email", "phone", "ssn", "date_of_birth", "zip", "sex", "race")

SEX_VALUES = ("female", "male")
_SEX_VARIANTS = (("F", "M"), ("f", "m"), ("Female", "Male"), ("Female ", "Male "), ("FEMALE", "MALE"))
RACE_VALUES = ("white", "black", "hispanic", "asian", "other")
_RACE_P = (0.60, 0.13, 0.18, 0.06, 0.03)

_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                  "aol.com", "comcast.net", "protonmail.com", "example.org", "mail.com")
_EMAIL_DOMAIN_P = (0.38, 0.16, 0.12, 0.09, 0.08, 0.05, 0.04, 0.03, 0.03, 0.02)

_DIAGNOSES = ("I10", "E11.9", "E78.5", "J44.1", "I50.9", "N18.3", "J45.909", "F32.9", "M54.5",
              "K21.9", "R07.9", "I25.10", "E66.9", "J18.9", "N39.0", "R10.9", "I48.91", "G47.33",
              "E03.9", "F41.1", "M17.11", "K57.30", "L03.90", "A41.9", "I63.9", "S72.001A",
              "E11.65", "C50.919", "Z00.00", "O80")

_EPOCH = np.datetime64("1970-01-01", "D")
_START_DAY = int((np.datetime64("2019-01-01", "D") - _EPOCH).astype(np.int64))
_FIRST_VISIT_SPAN_DAYS = 6 * 365


# ---- helpers -------------------------------------------------------------------------
def _s(values) -> pa.Array:
    """Integers -> decimal strings (pyarrow, vectorized)."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _pad(values, width: int) -> pa.Array:
    return pc.utf8_lpad(_s(values), width=width, padding="0")


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _lookup(vocab, codes) -> pa.Array:
    return pa.array(list(vocab), type=pa.string()).take(pa.array(np.asarray(codes, dtype=np.int32)))


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m_start = d.astype("datetime64[M]")
    m = m_start.astype(np.int64) % 12 + 1
    dd = (d - m_start.astype("datetime64[D]")).astype(np.int64) + 1
    return y, m, dd


def _age_years(dob_days: np.ndarray, on_days: np.ndarray) -> np.ndarray:
    by, bm, bd = _ymd(dob_days)
    vy, vm, vd = _ymd(on_days)
    return vy - by - ((vm * 100 + vd) < (bm * 100 + bd)).astype(np.int64)


def _zip_pool(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0x5A1])
    pool = rng.choice(np.arange(1001, 99951), size=3000, replace=False)
    w = 1.0 / (np.arange(3000) + 10.0)
    return pool, w / w.sum()


def _valid_nxx(rng: np.random.Generator, n: int) -> np.ndarray:
    """NANP area code / exchange: NXX with N in 2-9, not N11, second digit != 9."""
    n1 = rng.integers(2, 10, n)
    n2 = rng.integers(0, 9, n)
    n3 = rng.integers(0, 10, n)
    n3 = np.where((n2 == 1) & (n3 == 1), 0, n3)
    return n1 * 100 + n2 * 10 + n3


def _visits_per_patient(rng: np.random.Generator, n_rows: int) -> np.ndarray:
    counts = np.empty(0, dtype=np.int64)
    total = 0
    while total < n_rows:
        block = rng.geometric(1.0 / 3.0, size=max(16, int((n_rows - total) / 3 * 1.1) + 16))
        counts = np.concatenate([counts, block])
        total = int(counts.sum())
    csum = np.cumsum(counts)
    n_pat = int(np.searchsorted(csum, n_rows) + 1)
    counts = counts[:n_pat].copy()
    counts[-1] -= int(csum[n_pat - 1] - n_rows)
    return counts


# ---- one chunk ------------------------------------------------------------------------------
def _chunk_table(n: int, seed: int, chunk: int, row_offset: int, dirty: bool) -> pa.Table:
    rng = np.random.default_rng([seed, chunk])
    names = load_names()
    n_dup = int(round(n * DUPLICATE_RATE)) if dirty else 0
    nb = n - n_dup
    if nb <= 0:
        nb, n_dup = n, 0

    # --- patients
    counts = _visits_per_patient(rng, nb)
    n_pat = len(counts)
    pat = np.repeat(np.arange(n_pat), counts)
    patient_id = 10_000_001 + row_offset + np.arange(n_pat, dtype=np.int64)

    sex = (rng.random(n_pat) >= 0.52).astype(np.int8)  # 0 female, 1 male
    nf, nm, nl = len(names.first_female), len(names.first_male), len(names.last)
    first_code = np.where(sex == 0, rng.integers(0, nf, n_pat), nf + rng.integers(0, nm, n_pat))
    first = _lookup(names.first_female + names.first_male, first_code)
    last = _lookup(names.last, rng.integers(0, nl, n_pat))
    name = pc.binary_join_element_wise(first, last, " ")

    sep = _lookup((".", "_", ""), rng.choice(3, n_pat, p=(0.6, 0.2, 0.2)))
    digits = _s(rng.integers(1, 1000, n_pat))
    digits = pc.if_else(pa.array(rng.random(n_pat) < 0.6), digits, "")
    domain = _lookup(_EMAIL_DOMAINS, rng.choice(len(_EMAIL_DOMAINS), n_pat, p=_EMAIL_DOMAIN_P))
    email = pc.utf8_lower(_join(first, sep, last, digits, "@", domain))

    area, exch = _s(_valid_nxx(rng, n_pat)), _s(_valid_nxx(rng, n_pat))
    sub = _pad(rng.integers(0, 10000, n_pat), 4)
    phone_fmt = pa.array(rng.choice(5, n_pat, p=(0.35, 0.3, 0.1, 0.15, 0.1)).astype(np.int8))
    phone = pc.choose(
        phone_fmt,
        _join("(", area, ") ", exch, "-", sub),
        _join(area, "-", exch, "-", sub),
        _join(area, ".", exch, ".", sub),
        _join("+1 ", area, " ", exch, " ", sub),
        _join("+1", area, exch, sub),
    )

    ssn_area = rng.integers(1, 899, n_pat)
    ssn_area = np.where(ssn_area == 666, 667, ssn_area)
    ssn = _join(_pad(ssn_area, 3), "-", _pad(rng.integers(1, 100, n_pat), 2), "-",
                _pad(rng.integers(1, 10000, n_pat), 4))

    first_visit = _START_DAY + rng.integers(0, _FIRST_VISIT_SPAN_DAYS, n_pat)
    age0 = np.clip(rng.normal(52.0, 19.0, n_pat), 0.05, 99.5)
    dob_days = first_visit - np.round(age0 * 365.2425).astype(np.int64)

    zpool, zp = _zip_pool(seed)
    zip_code = _pad(zpool[rng.choice(len(zpool), n_pat, p=zp)], 5)
    race = rng.choice(len(RACE_VALUES), n_pat, p=_RACE_P).astype(np.int8)

    bmi_base = np.clip(rng.normal(28.0, 5.5, n_pat), 16.0, 55.0)
    diabetic = rng.random(n_pat) < 0.18
    prior_base = rng.poisson(1.5, n_pat)

    # --- visits
    starts = np.cumsum(counts) - counts
    rank = np.arange(nb) - np.repeat(starts, counts)
    gaps = np.where(rank == 0, 0, np.ceil(rng.exponential(90.0, nb))).astype(np.int64)
    cg = np.cumsum(gaps)
    visit_day = first_visit[pat] + cg - np.repeat(cg[starts], counts)

    dob_row = dob_days[pat]
    age = _age_years(dob_row, visit_day)
    bmi = np.round(np.clip(bmi_base[pat] + rng.normal(0.0, 0.7, nb), 14.0, 70.0), 1)
    sbp = np.round(np.clip(105 + 0.45 * age + 0.8 * (bmi - 27) + rng.normal(0, 12, nb), 80, 220)).astype(np.int64)
    dia_row = diabetic[pat]
    hba1c = 5.0 + 0.008 * age + 0.04 * (bmi - 27) + rng.normal(0, 0.3, nb)
    hba1c = hba1c + np.where(dia_row, 1.2 + rng.gamma(2.0, 0.6, nb), 0.0)
    hba1c = np.round(np.clip(hba1c, 4.0, 14.0), 1)
    prior = prior_base[pat] + rank
    los = 1 + rng.poisson(1.0 + 0.025 * np.clip(age - 40, 0, None), nb)
    los = np.minimum(los, 30).astype(np.int64)
    meds = np.minimum(rng.poisson(0.5 + 0.05 * age + 2.0 * dia_row), 25).astype(np.int64)

    dw = 1.0 / (np.arange(len(_DIAGNOSES)) + 3.0)
    diag = rng.choice(len(_DIAGNOSES), nb, p=dw / dw.sum())
    diag = np.where(dia_row & (rng.random(nb) < 0.4), 1, diag)  # E11.9 for diabetics

    feats = {"age": age, "bmi": bmi, "systolic_bp": sbp, "hba1c": hba1c,
             "num_prior_visits": prior, "los_days": los, "num_medications": meds}
    p = _probability(feats)
    label = (rng.random(nb) < p).astype(np.int64)

    # --- order visits by date; visit ids follow that order
    order = np.argsort(visit_day, kind="stable")
    pat_o = pat[order]
    idx_o = pa.array(pat_o)

    cols: dict[str, object] = {
        "visit_id": 10_000_001 + row_offset + np.arange(nb, dtype=np.int64),
        "patient_id": patient_id[pat_o],
        "name": name.take(idx_o),
        "email": email.take(idx_o),
        "phone": phone.take(idx_o),
        "ssn": ssn.take(idx_o),
        "date_of_birth": dob_row[order],
        "zip": zip_code.take(idx_o),
        "sex": sex[pat_o].astype(np.int32),
        "race": race[pat_o].astype(np.int32),
        "age": age[order],
        "visit_date": visit_day[order],
        "bmi": bmi[order],
        "systolic_bp": sbp[order],
        "hba1c": hba1c[order],
        "num_prior_visits": prior[order].astype(np.int64),
        "los_days": los[order],
        "num_medications": meds[order],
        "diagnosis_code": _lookup(_DIAGNOSES, diag[order]),
        "readmitted_30d": label[order],
    }

    sex_vocab: list[str] = list(SEX_VALUES)
    for pair in _SEX_VARIANTS:
        sex_vocab.extend(pair)
    race_vocab: list[str] = list(RACE_VALUES)
    for fn in (str.capitalize, str.upper, lambda s: s + " ", lambda s: " " + s.capitalize()):
        race_vocab.extend(fn(r) for r in RACE_VALUES)
    race_valid = np.ones(nb, dtype=bool)

    if dirty:
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
                ws = pc.choose(kind, _join(" ", sub_v), _join(sub_v, " "), _join("  ", sub_v, "\t"))
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

    cols["sex"] = _lookup(sex_vocab, cols["sex"])
    race_arr = _lookup(race_vocab, cols["race"])
    if not race_valid.all():
        race_arr = pc.if_else(pa.array(race_valid), race_arr, pa.scalar(None, pa.string()))
    cols["race"] = race_arr
    for c in ("date_of_birth", "visit_date"):
        cols[c] = pa.array(cols[c].astype(np.int32), type=pa.int32()).cast(pa.date32())

    arrays = [cols[f.name] if isinstance(cols[f.name], (pa.Array, pa.ChunkedArray))
              else pa.array(cols[f.name], type=f.type, from_pandas=True) for f in _SCHEMA]
    table = pa.Table.from_arrays(arrays, schema=_SCHEMA)
    if n_dup:
        src = rng.integers(0, nb, n_dup)
        keys = np.concatenate([np.arange(nb, dtype=np.float64), rng.uniform(0, nb, n_dup)])
        idx = np.concatenate([np.arange(nb), src])[np.argsort(keys, kind="stable")]
        table = table.take(pa.array(idx))
    return table


def _probability(feats) -> np.ndarray:
    z = np.full(len(np.asarray(feats["age"])), READMIT_INTERCEPT, dtype=np.float64)
    for f, (coef, center, scale) in READMIT_COEFFICIENTS.items():
        z += coef * (np.asarray(feats[f], dtype=np.float64) - center) / scale
    return 1.0 / (1.0 + np.exp(-z))


_SCHEMA = pa.schema([
    ("visit_id", pa.int64()), ("patient_id", pa.int64()), ("name", pa.string()),
    ("email", pa.string()), ("phone", pa.string()), ("ssn", pa.string()),
    ("date_of_birth", pa.date32()), ("zip", pa.string()), ("sex", pa.string()),
    ("race", pa.string()), ("age", pa.int64()), ("visit_date", pa.date32()),
    ("bmi", pa.float64()), ("systolic_bp", pa.int64()), ("hba1c", pa.float64()),
    ("num_prior_visits", pa.int64()), ("los_days", pa.int64()), ("num_medications", pa.int64()),
    ("diagnosis_code", pa.string()), ("readmitted_30d", pa.int64()),
])


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


def _feature_frame(df: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from privacy.errors import InputError

    missing = [c for c in CLINIC_FEATURES if c not in df.columns]
    if missing:
        raise InputError(f"clinic features: missing column(s) {', '.join(missing)}")
    feats = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
             for c in CLINIC_FEATURES}
    ok = np.ones(len(df), dtype=bool)
    for v in feats.values():
        ok &= np.isfinite(v)
    ok &= (feats["age"] >= 0) & (feats["age"] <= 120)
    return feats, ok


def readmission_probability(df: pd.DataFrame) -> np.ndarray:
    """True P(readmitted_30d = 1) per row from the feature columns (NaN where a feature is
    missing or implausible, e.g. a planted impossible age)."""
    feats, ok = _feature_frame(df)
    p = _probability(feats)
    p[~ok] = np.nan
    return p


def clinic_bayes_accuracy(df: pd.DataFrame) -> float:
    """Bayes-optimal accuracy on ``df``: mean over valid rows of max(p, 1 - p)."""
    p = readmission_probability(df)
    p = p[np.isfinite(p)]
    if len(p) == 0:
        return float("nan")
    return float(np.mean(np.maximum(p, 1.0 - p)))


sample_generators: dict[str, Callable[..., pd.DataFrame]] = {"clinic": generate_clinic}
sample_writers: dict[str, Callable[..., Path]] = {"clinic": write_clinic}
