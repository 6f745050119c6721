"""governance.demo.sample_data: determinism, schema, dirt rates, patient consistency, label model."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.demo import sample_data as sd
from privacy.errors import InputError

N = 120_000
EMAIL_RE = r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
SUITE = Path(__file__).resolve().parents[3] / "examples" / "clinic" / "suite.json"


@pytest.fixture(scope="module")
def dirty() -> pd.DataFrame:
    return sd.generate_clinic(N, seed=11)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return sd.generate_clinic(N, seed=11, dirty=False)


def test_deterministic_for_a_seed():
    a = sd.generate_clinic(3000, seed=5)
    b = sd.generate_clinic(3000, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = sd.generate_clinic(3000, seed=6)
    assert not a["ssn"].equals(c["ssn"])


def test_columns_and_dtypes(dirty):
    assert tuple(dirty.columns) == sd.CLINIC_COLUMNS
    assert len(dirty) == N
    for c in ("visit_id", "patient_id", "age", "systolic_bp", "num_prior_visits", "los_days",
              "num_medications", "readmitted_30d"):
        assert pd.api.types.is_integer_dtype(dirty[c].dtype), c
    for c in ("bmi", "hba1c"):
        assert pd.api.types.is_float_dtype(dirty[c].dtype), c
    for c in ("date_of_birth", "visit_date"):
        assert pd.api.types.is_datetime64_any_dtype(dirty[c].dtype), c
    for c in ("name", "email", "phone", "ssn", "zip", "sex", "race", "diagnosis_code"):
        assert pd.api.types.is_string_dtype(dirty[c].dtype), c
    assert set(dirty["readmitted_30d"].unique()) == {0, 1}
    assert dirty["visit_date"].min() >= pd.Timestamp("2019-01-01")


def test_clean_data_is_clean(clean):
    assert clean["visit_id"].is_unique
    assert not clean.duplicated().any()
    assert clean.notna().all().all()
    assert set(clean["sex"].unique()) == set(sd.SEX_VALUES)
    assert set(clean["race"].unique()) == set(sd.RACE_VALUES)
    assert clean["email"].str.fullmatch(EMAIL_RE).all()
    assert clean["age"].between(0, 120).all()
    for c in ("name", "email", "diagnosis_code"):
        assert (clean[c] == clean[c].str.strip()).all()
    assert clean["zip"].str.fullmatch(r"\d{5}").all()


def test_patient_attributes_constant_across_visits(clean):
    per = clean.groupby("patient_id")[list(sd.PATIENT_ATTRIBUTES)].nunique(dropna=False)
    assert (per.max() == 1).all(), per.max()
    visits = clean.groupby("patient_id").size()
    assert 2.7 <= visits.mean() <= 3.3
    assert visits.max() > 5  # geometric tail


def test_ssn_rules(clean):
    parts = clean["ssn"].str.extract(r"^(\d{3})-(\d{2})-(\d{4})$")
    assert parts.notna().all().all()
    area, group, serial = (parts[i].astype(int) for i in range(3))
    assert ((area > 0) & (area != 666) & (area < 900)).all()
    assert (group > 0).all() and (serial > 0).all()


def test_phone_numbers_are_nanp(clean):
    digits = clean["phone"].str.replace(r"\D", "", regex=True)
    digits = digits.where(digits.str.len() == 10, digits.str.slice(1))
    assert (digits.str.len() == 10).all()
    assert digits.str.match(r"^[2-9][0-8]\d[2-9]\d{6}$").all()
    assert not digits.str.slice(1, 3).eq("11").any() and not digits.str.slice(4, 6).eq("11").any()


def test_age_consistent_with_dob_and_visit_date(clean):
    dob, visit = clean["date_of_birth"], clean["visit_date"]
    before_birthday = (visit.dt.month * 100 + visit.dt.day) < (dob.dt.month * 100 + dob.dt.day)
    expected = visit.dt.year - dob.dt.year - before_birthday.astype(int)
    assert (clean["age"] == expected).all()
    assert clean["age"].min() >= 0 and clean["age"].max() <= 110


def test_dirt_rates_within_tolerance(dirty):
    n = len(dirty)
    assert abs(dirty.duplicated().mean() - sd.DUPLICATE_RATE) < 0.0015
    assert not dirty["visit_id"].is_unique
    for c in sd.MISSING_COLUMNS:
        assert abs(dirty[c].isna().mean() - sd.MISSING_RATE) < 0.003, c
    emails = dirty["email"].dropna().str.strip()
    assert abs((~emails.str.fullmatch(EMAIL_RE)).mean() - sd.MALFORMED_EMAIL_RATE) < 0.002
    bad_age = ~dirty["age"].between(0, 120)
    assert abs(bad_age.mean() - sd.IMPOSSIBLE_AGE_RATE) < 0.001
    assert set(dirty.loc[bad_age, "age"].unique()) <= set(sd.IMPOSSIBLE_AGES)
    assert abs((~dirty["sex"].isin(sd.SEX_VALUES)).mean() - sd.CATEGORY_SPELLING_RATE) < 0.003
    race = dirty["race"].dropna()
    assert abs((~race.isin(sd.RACE_VALUES)).mean() - sd.CATEGORY_SPELLING_RATE) < 0.003
    assert {"F", "Female", "Female "} & set(dirty["sex"].unique())
    for c in sd.WHITESPACE_COLUMNS:
        s = dirty[c].dropna()
        assert abs((s != s.str.strip()).mean() - sd.WHITESPACE_RATE) < 0.003, c
    assert n == N


def test_label_model_is_recoverable():
    from sklearn.linear_model import LogisticRegression

    df = sd.generate_clinic(80_000, seed=3, dirty=False)
    X = df[list(sd.CLINIC_FEATURES)].to_numpy(dtype=float)
    y = df["readmitted_30d"].to_numpy()
    train, test = slice(0, 50_000), slice(50_000, None)
    model = LogisticRegression(max_iter=3000).fit(X[train], y[train])
    acc = model.score(X[test], y[test])
    bayes = sd.clinic_bayes_accuracy(df.iloc[test])
    majority = max(y[test].mean(), 1 - y[test].mean())
    assert bayes > majority + 0.05          # the label carries real signal
    assert acc >= bayes - 0.015, (acc, bayes)
    assert acc <= bayes + 0.015
    # coefficients on the raw scale: coef / scale
    coef = dict(zip(sd.CLINIC_FEATURES, model.coef_[0]))
    for f in ("hba1c", "los_days", "age"):
        c, _, scale = sd.READMIT_COEFFICIENTS[f]
        assert coef[f] == pytest.approx(c / scale, rel=0.25), f
    # the probabilities are calibrated: mean p matches the positive rate
    p = sd.readmission_probability(df)
    assert abs(np.nanmean(p) - y.mean()) < 0.01


def test_bayes_accuracy_ignores_dirty_rows(dirty):
    p = sd.readmission_probability(dirty)
    assert np.isnan(p[~dirty["age"].between(0, 120).to_numpy()]).all()
    assert 0.75 < sd.clinic_bayes_accuracy(dirty) < 0.95
    with pytest.raises(InputError, match="los_days"):
        sd.readmission_probability(dirty.drop(columns=["los_days"]))


def test_chunks_keep_ids_unique_and_patients_whole():
    df = sd.generate_clinic(2500, seed=2, dirty=False, chunk_rows=1000)
    assert len(df) == 2500 and df["visit_id"].is_unique
    per = df.groupby("patient_id")[list(sd.PATIENT_ATTRIBUTES)].nunique()
    assert (per.max() == 1).all()


def test_write_clinic_round_trips(tmp_path):
    ref = sd.generate_clinic(2500, seed=4, chunk_rows=1000)
    pq_path = sd.write_clinic(tmp_path / "c.parquet", 2500, 4, chunk_rows=1000)
    back = pd.read_parquet(pq_path)
    assert back["visit_id"].tolist() == ref["visit_id"].tolist()
    assert back["email"].fillna("<na>").tolist() == ref["email"].fillna("<na>").tolist()
    csv_path = sd.write_clinic(tmp_path / "c.csv", 2500, 4, chunk_rows=1000)
    back = pd.read_csv(csv_path, dtype={"zip": str, "ssn": str}, keep_default_na=False, na_values=[""])
    assert len(back) == 2500
    assert back["ssn"].tolist() == ref["ssn"].tolist()
    assert back["zip"].fillna("<na>").tolist() == ref["zip"].fillna("<na>").tolist()
    assert back["age"].tolist() == ref["age"].tolist()
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(InputError, match="expected a .csv"):
        sd.write_clinic(tmp_path / "c.xlsx", 10, 0)


def test_bad_arguments():
    with pytest.raises(InputError, match="rows"):
        sd.generate_clinic(-1)
    with pytest.raises(InputError, match="seed"):
        sd.generate_clinic(10, seed=-2)
    assert len(sd.generate_clinic(0)) == 0


def test_registry():
    assert sd.sample_generators["clinic"] is sd.generate_clinic
    assert sd.sample_writers["clinic"] is sd.write_clinic


def test_chunked_generation_yields_the_requested_rows():
    # Speed is measured in benchmarks, never asserted here (a loaded CI machine is not slow code).
    chunks = list(sd.iter_clinic_chunks(500_000, seed=1, chunk_rows=250_000))
    assert [t.num_rows for t in chunks] == [250_000, 250_000]


# ---- the example GX suite: cleaned data passes, raw data fails ----------------------------------
def _evaluate(df: pd.DataFrame, exp: dict) -> bool:
    """A minimal pandas evaluator of the GX expectation types used by examples/clinic/suite.json
    (GX semantics: nulls are ignored by the map expectations other than not_be_null)."""
    t, kw = exp["type"], exp["kwargs"]
    col = kw["column"]
    if t == "expect_column_to_exist":
        return col in df.columns
    s = df[col]
    nn = s.dropna()
    if t == "expect_column_values_to_not_be_null":
        return bool(s.notna().all())
    if t == "expect_column_values_to_be_unique":
        return bool(nn.is_unique)
    if t == "expect_column_values_to_be_between":
        return bool(nn.between(kw["min_value"], kw["max_value"]).all())
    if t == "expect_column_values_to_be_in_set":
        return bool(nn.isin(kw["value_set"]).all())
    if t == "expect_column_values_to_match_regex":
        return bool(nn.astype(str).map(lambda v: re.search(kw["regex"], v) is not None).all())
    raise AssertionError(f"unsupported expectation type {t}")


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    out = df.drop_duplicates().copy()
    for c in sd.WHITESPACE_COLUMNS + ("sex", "race"):
        out[c] = out[c].str.strip()
    out["sex"] = out["sex"].str.lower().replace({"f": "female", "m": "male"})
    out["race"] = out["race"].str.lower()
    out["age"] = out["age"].where(out["age"].between(0, 120))
    out["email"] = out["email"].where(out["email"].str.fullmatch(EMAIL_RE).fillna(False).astype(bool))
    return out


def test_example_suite_passes_cleaned_and_fails_raw(dirty):
    suite = json.loads(SUITE.read_text())
    assert suite["name"] == "clinic-visits"
    allowed = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_between",
               "expect_column_values_to_be_in_set", "expect_column_values_to_match_regex",
               "expect_column_values_to_be_unique", "expect_column_to_exist"}
    assert {e["type"] for e in suite["expectations"]} <= allowed
    assert 8 <= len(suite["expectations"]) <= 20  # declarations of every training feature included
    raw_results = [_evaluate(dirty, e) for e in suite["expectations"]]
    assert sum(not r for r in raw_results) >= 5, raw_results
    cleaned = _clean(dirty)
    failed = [e for e in suite["expectations"] if not _evaluate(cleaned, e)]
    assert not failed, failed
