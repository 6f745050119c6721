"""Synthetic clinic visits: how many per patient, the clinical features, and the label.

Why the label model is public here: benchmarks and tests need the *true*
readmission probability to say how close a trained model gets to the best any
classifier can do (:func:`clinic_bayes_accuracy`). The draw order on ``rng`` is
part of the data's definition.

Label model (drawn from the clean feature values, before any dirt)::

    logit P(readmitted_30d = 1) = READMIT_INTERCEPT + sum coef * (x - center) / scale
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from governance.demo.arrow_text import lookup
from governance.demo.clinic_people import Patients

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

_DIAGNOSES = ("I10", "E11.9", "E78.5", "J44.1", "I50.9", "N18.3", "J45.909", "F32.9", "M54.5",
              "K21.9", "R07.9", "I25.10", "E66.9", "J18.9", "N39.0", "R10.9", "I48.91", "G47.33",
              "E03.9", "F41.1", "M17.11", "K57.30", "L03.90", "A41.9", "I63.9", "S72.001A",
              "E11.65", "C50.919", "Z00.00", "O80")


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


def visits_per_patient(rng: np.random.Generator, n_rows: int) -> np.ndarray:
    """Geometric (p = 1/3) visit counts summing to exactly ``n_rows`` (the last one truncated)."""
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


def probability(feats) -> np.ndarray:
    """P(readmitted_30d = 1) from a mapping of feature name -> values."""
    z = np.full(len(np.asarray(feats["age"])), READMIT_INTERCEPT, dtype=np.float64)
    for f, (coef, center, scale) in READMIT_COEFFICIENTS.items():
        z += coef * (np.asarray(feats[f], dtype=np.float64) - center) / scale
    return 1.0 / (1.0 + np.exp(-z))


def draw_visits(rng: np.random.Generator, patients: Patients, counts: np.ndarray,
                id_offset: int) -> dict[str, object]:
    """Every visit of ``patients`` (``counts[i]`` for patient i), ordered by visit date.

    Returns the clean columns of the clinic table; ``sex`` and ``race`` stay codes
    (the dirt step may respell them before they become strings). Visit ids start at
    ``10_000_001 + id_offset`` and follow the date order.
    """
    nb = int(counts.sum())
    pat = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    rank = np.arange(nb) - np.repeat(starts, counts)
    gaps = np.where(rank == 0, 0, np.ceil(rng.exponential(90.0, nb))).astype(np.int64)
    cg = np.cumsum(gaps)
    visit_day = patients.first_visit[pat] + cg - np.repeat(cg[starts], counts)

    dob_row = patients.dob_days[pat]
    age = _age_years(dob_row, visit_day)
    bmi = np.round(np.clip(patients.bmi_base[pat] + rng.normal(0.0, 0.7, nb), 14.0, 70.0), 1)
    sbp = np.round(np.clip(105 + 0.45 * age + 0.8 * (bmi - 27) + rng.normal(0, 12, nb), 80, 220)).astype(np.int64)
    dia_row = patients.diabetic[pat]
    hba1c = 5.0 + 0.008 * age + 0.04 * (bmi - 27) + rng.normal(0, 0.3, nb)
    hba1c = hba1c + np.where(dia_row, 1.2 + rng.gamma(2.0, 0.6, nb), 0.0)
    hba1c = np.round(np.clip(hba1c, 4.0, 14.0), 1)
    prior = patients.prior_base[pat] + rank
    los = 1 + rng.poisson(1.0 + 0.025 * np.clip(age - 40, 0, None), nb)
    los = np.minimum(los, 30).astype(np.int64)
    meds = np.minimum(rng.poisson(0.5 + 0.05 * age + 2.0 * dia_row), 25).astype(np.int64)

    dw = 1.0 / (np.arange(len(_DIAGNOSES)) + 3.0)
    diag = rng.choice(len(_DIAGNOSES), nb, p=dw / dw.sum())
    diag = np.where(dia_row & (rng.random(nb) < 0.4), 1, diag)  # E11.9 for diabetics

    feats = {"age": age, "bmi": bmi, "systolic_bp": sbp, "hba1c": hba1c,
             "num_prior_visits": prior, "los_days": los, "num_medications": meds}
    label = (rng.random(nb) < probability(feats)).astype(np.int64)

    order = np.argsort(visit_day, kind="stable")
    pat_o = pat[order]
    idx_o = pa.array(pat_o)
    return {
        "visit_id": 10_000_001 + id_offset + np.arange(nb, dtype=np.int64),
        "patient_id": patients.patient_id[pat_o],
        "name": patients.name.take(idx_o),
        "email": patients.email.take(idx_o),
        "phone": patients.phone.take(idx_o),
        "ssn": patients.ssn.take(idx_o),
        "date_of_birth": dob_row[order],
        "zip": patients.zip_code.take(idx_o),
        "sex": patients.sex[pat_o].astype(np.int32),
        "race": patients.race[pat_o].astype(np.int32),
        "age": age[order],
        "visit_date": visit_day[order],
        "bmi": bmi[order],
        "systolic_bp": sbp[order],
        "hba1c": hba1c[order],
        "num_prior_visits": prior[order].astype(np.int64),
        "los_days": los[order],
        "num_medications": meds[order],
        "diagnosis_code": lookup(_DIAGNOSES, diag[order]),
        "readmitted_30d": label[order],
    }


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
    p = probability(feats)
    p[~ok] = np.nan
    return p


def clinic_bayes_accuracy(df: pd.DataFrame) -> float:
    """Bayes-optimal accuracy on ``df``: mean over valid rows of max(p, 1 - p)."""
    p = readmission_probability(df)
    p = p[np.isfinite(p)]
    if len(p) == 0:
        return float("nan")
    return float(np.mean(np.maximum(p, 1.0 - p)))
