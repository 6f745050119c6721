"""Quality: fast engine == GX semantics, ids not values, suite loading, suggestions."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from governance.errors import InputError
from governance.data.quality import (
    load_suite,
    suggest_suite,
    validate,
    validate_parquet_batches,
)

PII = "zelda.secret@example.org"


def corpus() -> pd.DataFrame:
    """Small frame with nulls, duplicates, outliers, odd strings and mixed dtypes."""
    n = 40
    rng = np.random.default_rng(7)
    age = rng.integers(0, 100, n).astype(float)
    age[[3, 9]] = np.nan
    age[5] = 130.0
    age[6] = 0.0
    score = rng.normal(50, 10, n)
    score[[1]] = np.nan
    emails = [f"user{i}@example.com" for i in range(n)]
    emails[2] = PII
    emails[4] = "not-an-email"
    emails[7] = None
    emails[8] = emails[10]  # duplicate
    sex = rng.choice(["male", "female"], n).astype(object)
    sex[11] = "M"
    sex[12] = None
    site = rng.choice(["A", "B"], n)
    visit = rng.integers(0, 3, n)
    code = [f"C{i:03d}" for i in range(n)]
    code[13] = "C1"
    code[14] = None
    return pd.DataFrame({
        "row_id": np.arange(100, 100 + n, dtype=np.int64),
        "age": age,
        "score": score,
        "email": pd.array(emails, dtype="str"),
        "sex": pd.array(list(sex), dtype="str"),
        "site": site,
        "visit": visit,
        "code": pd.array(code, dtype="str"),
        "count": rng.integers(0, 10, n),
    })


SUITE = {
    "name": "corpus",
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10, "max_value": 100}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 50}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "age"}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "nope"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "age", "mostly": 0.9}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "email"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0, "max_value": 120}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "age", "min_value": 0, "max_value": 120, "strict_min": True, "mostly": 0.9}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "visit", "max_value": 1, "strict_max": True}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "sex", "value_set": ["male", "female"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "visit", "value_set": [0, 1]}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "email", "regex": r"^[^@\s]+@[^@\s]+$"}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": "C0", "mostly": 0.5}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "email"}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "row_id"}},
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "code", "min_value": 4, "max_value": 4}},
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "email", "min_value": 16}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "age", "type_": "float64"}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "visit", "type_": "float64"}},
        {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": "visit", "type_list": ["int64", "int32"]}},
        {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": "email", "type_list": ["str"]}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["site", "visit"]}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["row_id", "site"]}},
        {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "score", "min_value": 40, "max_value": 60}},
        {"type": "expect_column_min_to_be_between", "kwargs": {"column": "age", "min_value": 0, "strict_min": True}},
        {"type": "expect_column_max_to_be_between", "kwargs": {"column": "age", "max_value": 130}},
        # not vectorised by the fast engine: must fall back to GX
        {"type": "expect_column_median_to_be_between", "kwargs": {"column": "score", "min_value": 0, "max_value": 100}},
        {"type": "expect_column_values_to_not_match_regex", "kwargs": {"column": "email", "regex": "secret"}},
    ],
}


@pytest.fixture(scope="module")
def both() -> tuple:
    df = corpus()
    return df, validate(df, SUITE, engine="fast"), validate(df, SUITE, engine="gx")


def test_fast_and_gx_agree(both) -> None:
    _, f, g = both
    assert len(f.results) == len(g.results) == len(SUITE["expectations"])
    for rf, rg in zip(f.results, g.results):
        assert rf.type == rg.type
        assert rf.error is None and rg.error is None, (rf.type, rg.error)
        assert rf.success == rg.success, (rf.index, rf.type)
        assert rf.failing_row_ids == rg.failing_row_ids, (rf.index, rf.type)
    assert f.success == g.success is False
    assert f.failing_row_ids == g.failing_row_ids
    # the cross-check really exercised the fast engine, and the fallback went to GX
    engines = [r.engine for r in f.results]
    assert engines.count("gx") == 1 and f.results[-2].engine == "gx"


def test_failing_row_ids_are_the_planted_ones(both) -> None:
    _, f, _ = both
    by = {r.index: r for r in f.results}
    assert by[4].failing_row_ids == [103, 109] and not by[4].success
    assert by[5].success  # 38/40 >= 0.9
    assert by[7].failing_row_ids == [105]
    assert 106 in by[8].failing_row_ids and 105 in by[8].failing_row_ids
    assert by[10].failing_row_ids == [111]  # "M"; the null at 112 is skipped
    assert by[12].failing_row_ids == [104]
    assert by[14].failing_row_ids == [108, 110]
    assert by[16].failing_row_ids == [113]
    assert by[15].success and by[23].success
    assert not by[3].success and by[2].success
    assert [by[0].success, by[1].success] == [True, False]
    assert by[18].success and not by[19].success and by[20].success
    assert not by[21].success  # GX 1.24 + pandas 3: 'str' dtype is not in any type_list
    assert not by[28].success and by[28].failing_row_ids == [102]


def test_to_json_has_ids_not_values(both) -> None:
    _, f, g = both
    for res in (f, g):
        text = res.to_json()
        assert PII not in text and "not-an-email" not in text and "secret@" not in text
        doc = json.loads(text)
        assert doc["success"] is False
        assert 102 in doc["failing_row_ids"] and 104 in doc["failing_row_ids"]
        assert doc["results"][4]["failing_row_ids"] == [103, 109]


def test_mostly_vacuous_and_all_null() -> None:
    df = pd.DataFrame({"row_id": np.arange(4), "x": [np.nan] * 4, "s": pd.array([None, "a", None, "b"], dtype="str")})
    suite = {"name": "t", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 1}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "a", "mostly": 0.5}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "a", "mostly": 0.51}},
    ]}
    r = validate(df, suite)
    assert [x.success for x in r.results] == [True, True, False]
    assert r.results[2].failing_row_ids == [3]


def test_unknown_expectation_type_is_named(tmp_path) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
        {"type": "expect_column_values_to_be_purple", "kwargs": {"column": "a"}}]}))
    with pytest.raises(InputError, match=r"s\.json: expectations\[1\]\.type: expectation 1 has unknown type 'expect_column_values_to_be_purple'"):
        load_suite(p)


def test_unknown_column_is_named(tmp_path) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "agee"}}]}))
    with pytest.raises(InputError, match="agee"):
        load_suite(p, columns=["row_id", "age"])
    suite = load_suite(p)
    with pytest.raises(InputError, match="columns not in the data: 'agee'"):
        validate(pd.DataFrame({"row_id": [0], "age": [1]}), suite)
    with pytest.raises(InputError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{nope")
        load_suite(tmp_path / "bad.json")


def test_missing_row_id_and_engine_errors() -> None:
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(InputError, match="row id column 'row_id'"):
        validate(df, {"name": "s", "expectations": []})
    with pytest.raises(InputError, match="unknown validation engine"):
        validate(df.assign(row_id=0), {"name": "s", "expectations": []}, engine="nope")


def test_suggest_is_gx_loadable_passes_and_hides_pii(both, tmp_path) -> None:
    df = corpus().drop(columns=["code"])
    suite = suggest_suite(df, row_id_column="row_id", name="suggested")
    text = json.dumps(suite)
    assert PII not in text and "user1@example.com" not in text  # no value set for emails
    assert any(e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "site"
               for e in suite["expectations"])
    assert {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "row_id"}} in suite["expectations"]
    p = tmp_path / "suggested.json"
    p.write_text(text)
    loaded = load_suite(p, columns=df.columns)
    import great_expectations as gx

    gsuite = gx.ExpectationSuite(**loaded)  # GX itself opens it
    assert len(gsuite.expectations) == len(suite["expectations"])
    # the suggestion passes on the profiled data, for both engines
    assert validate(df, loaded, engine="fast").success
    assert validate(df, loaded, engine="gx").success


def test_gx_import_is_lazy() -> None:
    import subprocess

    code = ("import sys, governance.data.quality, governance.data.ingest, governance.data.cleaning;"
            "print('great_expectations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parquet_batches_match_in_memory(tmp_path) -> None:
    df = corpus()
    p = tmp_path / "c.parquet"
    df.to_parquet(p)
    suite = {"name": "b", "expectations": [e for e in SUITE["expectations"]
                                            if e["type"] != "expect_column_median_to_be_between"
                                            and "nope" not in json.dumps(e)]}
    full = validate(df, suite)
    batched = validate_parquet_batches(p, suite, batch_rows=7)
    assert batched.row_count == len(df)
    for a, b in zip(full.results, batched.results):
        assert (a.type, a.success, a.failing_row_ids) == (b.type, b.success, b.failing_row_ids)
    with pytest.raises(InputError, match="cannot be merged"):
        validate_parquet_batches(p, SUITE, batch_rows=7)


def test_parquet_batch_uniqueness_across_batches(tmp_path) -> None:
    df = pd.DataFrame({"k": [1, 2, 3, 4, 5, 1, 7, 3], "j": ["a"] * 8})
    p = tmp_path / "u.parquet"
    df.to_parquet(p)
    suite = {"name": "u", "expectations": [
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "k"}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["k", "j"]}}]}
    r = validate_parquet_batches(p, suite, batch_rows=3)
    assert r.results[0].failing_row_ids == [0, 2, 5, 7] == r.results[1].failing_row_ids


def test_threaded_regex_matches_pandas_on_non_null() -> None:
    from governance.data.quality import fast

    s = pd.Series(pd.array(["ab", None, "xb", "a", "Ab"] * 50_000, dtype="str"))
    got = np.asarray(fast._contains(s, "^a"), dtype=bool)
    want = s.astype(str).str.contains("^a").to_numpy(dtype=bool, na_value=True)
    nn = s.notna().to_numpy()
    assert (got[nn] == want[nn]).all() and got[nn].sum() == 100_000


# --------------------------------------------------------------------------- hostile suites


def _suite_error(tmp_path, payload: str) -> str:
    p = tmp_path / "suite.json"
    p.write_text(payload)
    with pytest.raises(InputError) as exc:
        load_suite(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: ") and "\n" not in msg
    return msg[len(str(p)) + 2:]


def test_suite_kwargs_are_typed(tmp_path) -> None:
    def one(kwargs: dict, etype: str = "expect_column_values_to_be_between") -> str:
        return _suite_error(tmp_path, json.dumps({"name": "s", "expectations": [
            {"type": "expect_column_to_exist", "kwargs": {"column": "a"}}, {"type": etype, "kwargs": kwargs}]}))

    assert one({"column": "a", "min_value": "0"}) == "expectations[1].kwargs.min_value: expected a number"
    assert one({"column": "a", "min_value": True}) == "expectations[1].kwargs.min_value: expected a number"
    assert one({"column": ["a"], "min_value": 0}).startswith("expectations[1].kwargs.column: expected a column name")
    assert one({"column": "a"}).startswith("expectations[1].kwargs.min_value: expect_column_values_to_be_between "
                                           "needs min_value or max_value")
    assert one({"column": "a", "value_set": [{"x": 1}]}, "expect_column_values_to_be_in_set").startswith(
        "expectations[1].kwargs.value_set[0]: expected a list of strings, numbers")
    assert one({"column": "a", "regex": "[a-"}, "expect_column_values_to_match_regex").startswith(
        "expectations[1].kwargs.regex: regular expression does not compile")
    assert one({"column": "a", "mostly": 1.5}, "expect_column_values_to_not_be_null").startswith(
        "expectations[1].kwargs.mostly: expected a number between 0 and 1")
    assert one({"column_list": []}, "expect_compound_columns_to_be_unique").startswith(
        "expectations[1].kwargs.column_list: expected a non-empty list")
    # kwargs the model does not know pass through to GX
    p = tmp_path / "ok.json"
    p.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0, "catch_exceptions": True}}]}))
    assert load_suite(p)["expectations"][0]["kwargs"]["catch_exceptions"] is True


def test_suite_meta_and_unknown_keys_are_named(tmp_path) -> None:
    exp = {"type": "expect_column_to_exist", "kwargs": {"column": "a"}}
    bad = [({"name": "s", "expectations": [], "meta": 1}, "meta: expected an object"),
           ({"name": "s", "expectations": [{**exp, "meta": [1]}]}, "expectations[0].meta: expected an object"),
           ({"name": "s", "expectations": [{**exp, "kwarg": {}}]},
            "expectations[0]: unknown key 'kwarg'; expected type, kwargs, meta (or another GX 1.x key)")]
    for payload, expected in bad:
        assert _suite_error(tmp_path, json.dumps(payload)) == expected
    p = tmp_path / "meta.json"
    p.write_text(json.dumps({"name": "s", "expectations": [{**exp, "meta": {"why": "x"}}], "meta": {"v": 1}}))
    suite = load_suite(p)
    assert suite["meta"] == {"v": 1} and suite["expectations"][0]["meta"] == {"why": "x"}


def test_suite_json_is_bounded_and_duplicate_free(tmp_path) -> None:
    assert _suite_error(tmp_path, '{"name": "s", "expectations": [], "name": "t"}').startswith("duplicate key 'name'")
    assert _suite_error(tmp_path, "[" * 100_000 + "]" * 100_000) == "JSON nested deeper than 64 levels"
    assert _suite_error(tmp_path, '{"name": "s", "expectations": [' + "[" * 70 + "]" * 70 + "]}") == \
        "JSON nested deeper than 64 levels"
    assert _suite_error(tmp_path, '{"name": "s", "expectations": [], "kwarg": {}}').startswith("unknown key 'kwarg'")
    assert _suite_error(tmp_path, '{"name": 1' + "0" * 5000 + ', "expectations": []}').startswith("not valid JSON")
    (tmp_path / "bin.json").write_bytes(b'{"name": "\xff"}')
    with pytest.raises(InputError, match=r"bin\.json: suite file is not UTF-8"):
        load_suite(tmp_path / "bin.json")
    with pytest.raises(InputError, match="found a directory"):
        load_suite(tmp_path)


def test_regex_refused_by_re2_falls_back_to_python_re() -> None:
    # `a{2000}` compiles in Python's re but not in Arrow's RE2: it used to raise ArrowInvalid.
    df = pd.DataFrame({"row_id": [0, 1, 2], "s": pd.Series(["a" * 2000, "b", None], dtype="str")})
    suite = {"name": "s", "expectations": [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "s", "regex": "a{2000}"}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "row_id", "type_": ","}}]}
    r = validate(df, suite, engine="fast")
    assert r.results[0].failing_row_ids == [1]
    assert r.results[1].success is False and r.results[1].engine == "fast"


def test_suggest_on_date_columns_writes_json() -> None:
    """Dates used to reach json.dumps as Timestamps (a traceback from `quality suggest`)."""
    import json

    import pandas as pd

    from governance.data.quality import suggest_suite

    df = pd.DataFrame({"row_id": [1, 2, 3], "visit_date": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01"])})
    suite = suggest_suite(df)
    json.dumps(suite)  # must not raise
    assert not any(e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "visit_date"
                   for e in suite["expectations"])
