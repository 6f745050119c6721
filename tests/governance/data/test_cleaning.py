"""Cleaning steps: behaviour, counts, row ids, type and registry errors, UCI Adult."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.data.cleaning import Step, StepParams, apply_steps, available_steps, build_steps, register_step
from governance.errors import InputError


def run(df: pd.DataFrame, *specs: dict):
    out, reps = apply_steps(df, build_steps(list(specs)), row_id_column="row_id")
    return out, reps[-1] if len(reps) == 1 else reps


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "row_id": np.arange(10, 16, dtype=np.int64),
        "sex": pd.array([" M", "m ", "female", "?", None, "male"], dtype="str"),
        "age": [20.0, 30.0, np.nan, 40.0, 500.0, 30.0],
        "n": pd.array(["1", "2", "x", "4.5", "5", None], dtype="str"),
        "label": pd.array(["<=50K.", ">50K.", ">50K", "<=50K", ">50K.", "<=50K"], dtype="str"),
        "k": [1, 1, 2, 2, 3, 3],
    })


def test_trim_whitespace_counts() -> None:
    out, rep = run(frame(), {"step": "trim_whitespace", "columns": ["sex"]})
    assert out["sex"].tolist()[:3] == ["M", "m", "female"]
    assert (rep.rows_in, rep.rows_out, rep.values_changed) == (6, 6, 2)


def test_map_values_synonyms() -> None:
    out, reps = run(frame(), {"step": "trim_whitespace"},
                    {"step": "map_values", "columns": ["sex"], "mapping": {"M": "male", "m": "male"}})
    assert out["sex"].tolist()[:3] == ["male", "male", "female"]
    assert reps[1].values_changed == 2


def test_normalize_case() -> None:
    out, rep = run(frame(), {"step": "normalize_case", "columns": ["sex"], "case": "upper"})
    assert out["sex"].tolist()[:3] == [" M", "M ", "FEMALE"] and rep.values_changed == 3


def test_normalize_missing_markers() -> None:
    out, rep = run(frame(), {"step": "normalize_missing", "columns": ["sex"], "markers": ["?"]})
    assert out["sex"].isna().sum() == 2 and rep.values_changed == 1


def test_strip_suffix_adult_labels() -> None:
    out, rep = run(frame(), {"step": "strip_suffix", "columns": ["label"], "suffix": "."})
    assert set(out["label"]) == {"<=50K", ">50K"} and rep.values_changed == 3


def test_coerce_types_reports_failures_by_row_id() -> None:
    out, rep = run(frame(), {"step": "coerce_types", "types": {"n": "int"}})
    assert str(out["n"].dtype) == "Int64"
    assert rep.failed_row_ids == {"n": [12, 13]}
    out, rep = run(frame(), {"step": "coerce_types", "types": {"n": "float"}})
    assert rep.failed_row_ids == {"n": [12]} and out["n"].iloc[3] == 4.5
    with pytest.raises(InputError, match=r"step 0 \(coerce_types\): 1 value\(s\) in column 'n'"):
        run(frame(), {"step": "coerce_types", "types": {"n": "float"}, "on_error": "raise"})


def test_drop_duplicates_exact_and_key() -> None:
    df = frame()
    df.loc[5, ["sex", "age", "n", "label", "k"]] = df.loc[1, ["sex", "age", "n", "label", "k"]].tolist()
    _, rep = run(df, {"step": "drop_duplicates"})
    assert rep.dropped_row_ids == [15] and rep.rows_out == 5
    out, rep = run(frame(), {"step": "drop_duplicates", "key": ["k"], "keep": "last"})
    assert out["row_id"].tolist() == [11, 13, 15] and rep.dropped_row_ids == [10, 12, 14]


def test_impute_strategies() -> None:
    out, rep = run(frame(), {"step": "impute", "columns": ["age"], "strategy": "median"})
    assert out["age"].iloc[2] == 30.0 and rep.values_changed == 1
    out, _ = run(frame(), {"step": "impute", "columns": ["age"], "strategy": "mean"})
    assert out["age"].iloc[2] == pytest.approx(124.0)
    out, _ = run(frame(), {"step": "impute", "columns": ["sex"], "strategy": "mode"})
    assert out["sex"].isna().sum() == 0
    out, _ = run(frame(), {"step": "impute", "columns": ["age"], "strategy": "constant", "value": -1})
    assert out["age"].iloc[2] == -1
    with pytest.raises(InputError, match="needs key 'value'"):
        run(frame(), {"step": "impute", "columns": ["age"], "strategy": "constant"})


def test_drop_missing_reports_ids() -> None:
    out, rep = run(frame(), {"step": "drop_missing", "columns": ["age", "sex"]})
    assert rep.dropped_row_ids == [12, 14] and len(out) == 4 and rep.rows_dropped == 2


def test_clip_and_flag_outliers() -> None:
    out, rep = run(frame(), {"step": "clip_outliers", "columns": ["age"]})
    assert out["age"].max() < 500 and rep.values_changed == 1
    out, rep = run(frame(), {"step": "flag_outliers", "columns": ["age"], "method": "zscore", "z": 1.5})
    assert out["age_outlier"].tolist() == [False, False, False, False, True, False]
    assert rep.details["flagged_row_ids"] == {"age": [14]} and rep.values_changed == 0
    out, _ = run(frame(), {"step": "clip_outliers", "columns": ["k"], "method": "iqr", "k": 0.1})
    assert out["k"].dtype == np.int64


def test_standardize_and_normalize() -> None:
    out, _ = run(frame(), {"step": "standardize", "columns": ["k"]})
    assert out["k"].mean() == pytest.approx(0) and out["k"].std(ddof=0) == pytest.approx(1)
    out, _ = run(frame(), {"step": "normalize", "columns": ["age"]})
    assert out["age"].min() == 0 and out["age"].max() == 1
    df = frame().assign(c=7.5)
    for step in ("standardize", "normalize"):  # a constant column becomes 0, never NaN or inf
        out, _ = run(df.copy(), {"step": step, "columns": ["c"]})
        assert out["c"].tolist() == [0.0] * 6, step


@pytest.mark.parametrize("spec", [{"step": "drop_duplicates", "key": ["k", "nope"]},
                                  {"step": "drop_missing", "columns": ["nope"]}])
def test_row_steps_name_a_missing_column(spec) -> None:
    with pytest.raises(InputError, match=r"step 0 \(drop_\w+\): column 'nope' is not in the data"):
        run(frame(), spec)


@pytest.mark.parametrize("spec, expected", [
    ({"step": "standardize", "columns": ["sex"]}, r"step 0 \(standardize\): column 'sex' has dtype str; expected a numeric"),
    ({"step": "trim_whitespace", "columns": ["age"]}, r"step 0 \(trim_whitespace\): column 'age' .*expected a string"),
    ({"step": "impute", "columns": ["label"], "strategy": "mean"}, r"column 'label' .*expected a numeric"),
    ({"step": "strip_suffix", "columns": ["k"], "suffix": "."}, r"column 'k' .*expected a string"),
    ({"step": "clip_outliers", "columns": ["nope"]}, r"column 'nope' is not in the data"),
])
def test_wrong_type_names_step_column_type(spec, expected) -> None:
    with pytest.raises(InputError, match=expected):
        run(frame(), spec)


def test_registry_errors_name_index_step_key() -> None:
    with pytest.raises(InputError, match=r"cleaning step 1 \(impute\): unknown key 'strat'"):
        build_steps([{"step": "trim_whitespace"}, {"step": "impute", "columns": ["a"], "strat": "mean"}])
    with pytest.raises(InputError, match=r"cleaning step 0: unknown step 'scrub'"):
        build_steps([{"step": "scrub"}])
    with pytest.raises(InputError, match=r"step 0 \(impute\): missing key 'strategy'"):
        build_steps([{"step": "impute", "columns": ["a"]}])
    with pytest.raises(InputError, match=r"step 0 \(impute\): bad value for key 'strategy'"):
        build_steps([{"step": "impute", "columns": ["a"], "strategy": "magic"}])
    with pytest.raises(InputError, match="'step' key"):
        build_steps([{"columns": ["a"]}])


def test_register_custom_step_and_input_untouched() -> None:
    class P(StepParams):
        factor: float

    @register_step
    class Scale(Step):
        name = "test_scale"
        Params = P

        def columns(self, df, row_id_column):
            return ["k"]

        def run(self, df, report, row_id_column):
            df["k"] = df["k"] * self.params.factor
            return df

    assert "test_scale" in available_steps()
    df = frame()
    out, rep = run(df, {"step": "test_scale", "factor": 2})
    assert out["k"].tolist() == [2, 2, 4, 4, 6, 6] and rep.values_changed == 6
    assert df["k"].tolist() == [1, 1, 2, 2, 3, 3]  # apply_steps works on a copy
    assert rep.to_dict()["params"] == {"factor": 2.0}


ADULT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "adult"
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
           "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
           "native_country", "income"]


@pytest.mark.skipif(not (ADULT / "adult.test").exists(), reason="UCI Adult not in shared/data")
def test_uci_adult_test_file_cleans() -> None:
    from governance.data.ingest import read_table

    df = read_table(ADULT / "adult.test", names=COLUMNS, skip_rows=1,
                    csv_options={"skipinitialspace": True})
    assert len(df) == 16281 and df["row_id"].tolist()[:2] == [0, 1]
    out, reps = apply_steps(df, build_steps([
        {"step": "normalize_missing", "markers": ["?"]},
        {"step": "strip_suffix", "columns": ["income"], "suffix": "."},
    ]), row_id_column="row_id")
    assert reps[0].values_changed == 963 + 966 + 274
    assert reps[1].values_changed == 16281
    assert set(out["income"]) == {"<=50K", ">50K"}
    assert out[["workclass", "occupation", "native_country"]].isna().sum().tolist() == [963, 966, 274]
    dropped, rep = apply_steps(out, build_steps([{"step": "drop_missing"}]), row_id_column="row_id")
    assert rep[0].rows_out == 15060 and len(rep[0].dropped_row_ids) == 16281 - 15060


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["f", "m", "F", " m", "x", ""])), min_size=1, max_size=40),
       st.dictionaries(st.sampled_from(["f", "m", "F", "", "zz"]), st.sampled_from(["female", "male", "f", ""]),
                       min_size=1, max_size=4))
def test_map_values_on_a_string_column_equals_the_element_wise_mapping(values, mapping) -> None:
    """The vectorised text-to-text path gives exactly what mapping each value by itself gives."""
    from governance.data.cleaning.steps import map_series

    s = pd.Series(values, dtype="str")
    got = map_series(s, mapping)
    expected = [None if v is None else mapping.get(v, v) for v in values]
    assert [None if pd.isna(v) else v for v in got.tolist()] == expected
    assert got.dtype == s.dtype
