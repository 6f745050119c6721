"""Issue 15: every cleaning and de-identification step gives on Spark what it gives on pandas:
the same cleaned values, the same failing and dropped row ids, the same pseudonyms, the same report."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.governance.data.spark.parity import run_cleaning, run_deid

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


def frame() -> pd.DataFrame:
    """Dirt of the kinds the steps exist for, under column names with spaces and dots."""
    n = 12
    return pd.DataFrame({
        "row_id": pd.Series(range(n), dtype="int64"),
        "full name": pd.Series(["  Ana Ruiz ", "bob", "ÉLODIE\u00a0", None, "?", "", " NA", "o'neil-smith",
                                "ß straße", "dup", "dup", "x y z"], dtype="str"),
        "sex": pd.Series(["F", "m", "f", "M", None, "F", "x", "m", "F", "f", "f", "m"], dtype="str"),
        "age.years": pd.Series([34, None, 7, 130, 131, -1, 45, 45, 88, 20, 20, 99], dtype="Int64"),
        "bmi": [22.5, 31.25, None, 18.0, 55.5, 24.5, 26.0, 2.5, 30.0, 21.0, 21.0, 120.0],
        "label": pd.Series([">50K.", "<=50K", ">50K", "<=50K.", None, ">50K.", "", ".", "<=50K", "x", "x", "y"],
                           dtype="str"),
        "num text": pd.Series(["1", "2.0", "2.5", "x", None, " 7 ", "-3", "1e3", "", "0", "0", "true"], dtype="str"),
        "when": pd.Series(["1985-03-02", "1990-12-31", "bad", None, "2001-01-01", "1985-03-02", "2020-02-29",
                           "1999-07-04", "", "1970-01-01", "1970-01-01", "2000-10-10"], dtype="str"),
        "zip": pd.Series(["02139", "10001-1234", "03601", "9021", None, "941031234", "abcde", " 59012 ",
                          "00000", "12345", "12345", "87801"], dtype="str"),
        "email": pd.Series(["A@x.org ", "a@x.org", None, "b@y.com", "", "c@z.net", "a@x.org", "d@w.io",
                            "É@x.org", "e@e.e", "e@e.e", "f@f.f"], dtype="str"),
        "notes": pd.Series(["call Ana Ruiz on +34 912 345 678", "no pii here", None, "mail a@x.org",
                            "", "ssn 123-45-6789", "x", "y", "z", "dup", "dup", "ok"], dtype="str"),
    })


CLEANING = {
    "trim_whitespace": [{"step": "trim_whitespace"}],
    "normalize_case": [{"step": "normalize_case", "columns": ["sex", "full name"], "case": "upper"},
                       {"step": "normalize_case", "columns": ["full name"], "case": "title"}],
    "map_values": [{"step": "map_values", "columns": ["sex"], "mapping": {"F": "female", "m": "male", "x": None}},
                   {"step": "map_values", "columns": ["age.years"], "mapping": {"20": 21, "7": 8}}],
    "normalize_missing": [{"step": "normalize_missing"},
                          {"step": "normalize_missing", "columns": ["full name"], "markers": ["?", ""], "strip": False}],
    "strip_suffix": [{"step": "strip_suffix", "columns": ["label"], "suffix": "."}],
    "coerce_types": [{"step": "coerce_types", "types": {"num text": "float", "bmi": "int"}},
                     {"step": "coerce_types", "types": {"num text": "bool", "age.years": "str", "sex": "category"}},
                     {"step": "coerce_types", "types": {"when": "datetime", "num text": "int"}}],
    "drop_duplicates": [{"step": "drop_duplicates"}, {"step": "drop_duplicates", "key": ["sex"], "keep": "last"}],
    "impute": [{"step": "impute", "columns": ["age.years", "bmi"], "strategy": "mean"},
               {"step": "impute", "columns": ["age.years"], "strategy": "median"},
               {"step": "impute", "columns": ["sex", "age.years"], "strategy": "mode"},
               {"step": "impute", "columns": ["bmi"], "strategy": "constant", "value": 0}],
    "drop_missing": [{"step": "drop_missing", "columns": ["full name", "bmi"]},
                     {"step": "drop_missing", "columns": ["sex", "age.years"], "how": "all"}],
    "clip_outliers": [{"step": "clip_outliers", "columns": ["bmi", "age.years"]},
                      {"step": "clip_outliers", "columns": ["bmi"], "method": "zscore", "z": 1.0}],
    "flag_outliers": [{"step": "flag_outliers", "columns": ["bmi", "age.years"], "k": 0.5}],
    "standardize": [{"step": "standardize", "columns": ["bmi", "age.years"]}],
    "normalize": [{"step": "normalize", "columns": ["bmi", "age.years"]}],
}

DEID = {
    "drop": [{"column": "full name", "action": "drop"}],
    "keep": [{"column": "sex", "action": "keep"}],
    "pseudonymize": [{"column": "email", "action": "pseudonymize", "domain": "email", "normalize": "strip_lower"},
                     {"column": "age.years", "action": "pseudonymize", "length": 64, "normalize": "none"},
                     {"column": "bmi", "action": "pseudonymize"}],
    "redact": [{"column": "notes", "action": "redact"},
               {"column": "notes", "action": "redact", "mode": "pseudonym", "types": ["phone", "email"]}],
    "suppress_rare": [{"column": "sex", "action": "suppress_rare", "k": 3, "other": "other"}],
    "generalize:age_band": [{"column": "age.years", "action": "generalize", "method": "age_band", "width": 20,
                             "top": 80}],
    "generalize:zip_prefix": [{"column": "zip", "action": "generalize", "method": "zip_prefix", "hipaa_restricted": True},
                              {"column": "zip", "action": "generalize", "method": "zip_prefix", "digits": 2,
                               "pad": False}],
    "generalize:date_truncate": [{"column": "when", "action": "generalize", "method": "date_truncate", "to": "month"}],
    "generalize:round": [{"column": "bmi", "action": "generalize", "method": "round", "base": 5},
                         {"column": "age.years", "action": "generalize", "method": "round", "ndigits": -1},
                         {"column": "bmi", "action": "generalize", "method": "round", "ndigits": 1}],
}


def test_every_registered_step_runs_on_spark_or_is_refused_with_a_reason() -> None:
    """A step added to either registry without a Spark implementation (or a documented refusal) fails here."""
    from governance.data.cleaning import available_steps
    from governance.data.spark.deid import DEID_KEYS, spark_coverage as deid_missing
    from governance.data.spark.registry import REFUSED
    from governance.data.spark.steps import spark_coverage as cleaning_missing

    assert cleaning_missing() == [] and deid_missing() == []
    assert all(reason.strip() for kind in REFUSED.values() for reason in kind.values())
    # and every step is exercised by a parity case below
    assert sorted(CLEANING) == available_steps()
    assert sorted(DEID) == sorted(DEID_KEYS)


@pytest.mark.parametrize("name", sorted(CLEANING))
def test_cleaning_step_parity(spark, name: str) -> None:
    for spec in CLEANING[name]:
        run_cleaning(spark, frame(), [spec])


@pytest.mark.parametrize("name", sorted(DEID))
def test_deid_step_parity(spark, name: str) -> None:
    run_deid(spark, frame(), DEID[name])
