"""A compact table of cases per expectation type the fast engine handles, in the manner of
GX's published ``tests/test_definitions/*.json`` (which the wheel does not ship): one small
frame, ordinary cases with the outcome and failing row ids GX 1.x gives, and cases whose
arguments GX refuses. Used by ``test_gx_refusals.py``."""
from __future__ import annotations

import numpy as np
import pandas as pd


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "row_id": np.arange(100, 105, dtype=np.int64),
        "x": [1.0, 2.0, 4.0, np.nan, 8.0],
        "n": np.array([1, 2, 3, 4, 5], dtype=np.int64),
        "z": pd.array(["hello", "jello", "mello", None, "hello"], dtype="str"),
        "w": pd.array(["a", "bb", "ccc", "dd", "e"], dtype="str"),
        "dup": np.array([1, 1, 2, 3, 3], dtype=np.int64),
        "g": pd.array(["p", "p", "q", "r", "r"], dtype="str"),
        "y": pd.Series([1, 2, 3, 4, "abc"], dtype=object),  # mixed types, as in GX's own cases
        "b": np.array([False, True, False, True, True]),
        "ts": pd.to_datetime(["2016-01-01T12:34:56", "2016-01-02T00:00:00", None, "2016-02-02T09:33:21",
                              "2017-02-01T00:01:02"]).astype("datetime64[ns]"),
    })


ALL = [100, 101, 102, 103, 104]

# (type, kwargs, "pass" | "fail" | "error", failing row ids); "error": GX cannot run it on
# this column (numbers compared with strings), so neither engine may pass or fail it
ORDINARY: list[tuple[str, dict, str, list[int]]] = [
    ("expect_column_values_to_not_be_null", {"column": "x"}, "fail", [103]),
    ("expect_column_values_to_not_be_null", {"column": "x", "mostly": 0.8}, "pass", [103]),
    ("expect_column_values_to_not_be_null", {"column": "n"}, "pass", []),
    ("expect_column_values_to_be_null", {"column": "x"}, "fail", [100, 101, 102, 104]),
    ("expect_column_values_to_be_null", {"column": "x", "mostly": 0.2}, "pass", [100, 101, 102, 104]),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 1, "max_value": 4}, "fail", [104]),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 1, "max_value": 8}, "pass", []),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 1, "strict_min": True}, "fail", [100]),
    ("expect_column_values_to_be_between", {"column": "n", "max_value": 3, "mostly": 0.6}, "pass", [103, 104]),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 2, "max_value": 2}, "fail", [100, 102, 104]),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 1.5, "max_value": 4.5}, "fail", [100, 104]),
    # `mostly` counts non-null values only: 3 of 4 in range
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 1, "max_value": 4, "mostly": 0.75}, "pass",
     [104]),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 1, "max_value": 4, "mostly": 0.76}, "fail",
     [104]),
    ("expect_column_values_to_be_between", {"column": "y", "min_value": 0, "max_value": 10}, "error", []),
    ("expect_column_values_to_be_between", {"column": "z", "min_value": 0}, "error", []),
    ("expect_column_values_to_be_in_set", {"column": "z", "value_set": ["hello", "jello", "mello"]}, "pass", []),
    ("expect_column_values_to_be_in_set", {"column": "z", "value_set": ["hello", "jello"]}, "fail", [102]),
    ("expect_column_values_to_be_in_set", {"column": "n", "value_set": []}, "fail", ALL),
    ("expect_column_values_to_be_in_set", {"column": "x", "value_set": [1.0, 2.0]}, "fail", [102, 104]),
    ("expect_column_values_to_be_in_set", {"column": "n", "value_set": ["1", 2]}, "fail", [100, 102, 103, 104]),
    ("expect_column_values_to_be_in_set", {"column": "z", "value_set": [None, "hello"]}, "fail", [101, 102]),
    ("expect_column_values_to_not_be_in_set", {"column": "z", "value_set": ["mello"]}, "fail", [102]),
    ("expect_column_values_to_not_be_in_set", {"column": "n", "value_set": []}, "pass", []),
    ("expect_column_values_to_match_regex", {"column": "z", "regex": "ello"}, "pass", []),
    ("expect_column_values_to_match_regex", {"column": "z", "regex": "^h"}, "fail", [101, 102]),
    ("expect_column_values_to_match_regex", {"column": "w", "regex": "^b", "mostly": 0.2}, "pass",
     [100, 102, 103, 104]),
    ("expect_column_values_to_not_match_regex", {"column": "z", "regex": "^h"}, "fail", [100, 104]),
    ("expect_column_values_to_not_match_regex", {"column": "w", "regex": "z"}, "pass", []),
    ("expect_column_values_to_be_unique", {"column": "dup"}, "fail", [100, 101, 103, 104]),
    ("expect_column_values_to_be_unique", {"column": "n"}, "pass", []),
    ("expect_column_values_to_be_unique", {"column": "z"}, "fail", [100, 104]),
    ("expect_column_value_lengths_to_be_between", {"column": "w", "min_value": 1, "max_value": 2}, "fail", [102]),
    ("expect_column_value_lengths_to_be_between", {"column": "w", "min_value": 2}, "fail", [100, 104]),
    ("expect_column_value_lengths_to_be_between", {"column": "z", "max_value": 5}, "pass", []),
    ("expect_column_value_lengths_to_be_between", {"column": "w", "min_value": 2.0, "max_value": 3}, "fail",
     [100, 104]),
    # GX answers an empty range on lengths with "every row fails" (its published case); so do we
    ("expect_column_value_lengths_to_be_between", {"column": "w", "min_value": 1, "max_value": 0}, "fail", ALL),
    ("expect_column_value_lengths_to_be_between", {"column": "n", "min_value": 0, "max_value": 1}, "pass", []),
    ("expect_column_value_lengths_to_equal", {"column": "z", "value": 5}, "pass", []),
    ("expect_column_value_lengths_to_equal", {"column": "w", "value": 1}, "fail", [101, 102, 103]),
    ("expect_compound_columns_to_be_unique", {"column_list": ["g", "dup"]}, "fail", [100, 101, 103, 104]),
    ("expect_compound_columns_to_be_unique", {"column_list": ["w", "dup"]}, "pass", []),
    ("expect_column_mean_to_be_between", {"column": "x", "min_value": 3, "max_value": 4}, "pass", []),
    ("expect_column_mean_to_be_between", {"column": "x", "min_value": 4}, "fail", []),
    ("expect_column_mean_to_be_between", {"column": "x", "min_value": 5, "max_value": 1}, "fail", []),
    ("expect_column_min_to_be_between", {"column": "x", "min_value": 1}, "pass", []),
    ("expect_column_min_to_be_between", {"column": "x", "min_value": 1, "strict_min": True}, "fail", []),
    ("expect_column_max_to_be_between", {"column": "n", "max_value": 5}, "pass", []),
    ("expect_column_max_to_be_between", {"column": "n", "max_value": 4}, "fail", []),
    ("expect_table_row_count_to_be_between", {"min_value": 5, "max_value": 5}, "pass", []),
    ("expect_table_row_count_to_be_between", {"max_value": 4}, "fail", []),
    ("expect_table_row_count_to_equal", {"value": 5}, "pass", []),
    ("expect_table_row_count_to_equal", {"value": 4}, "fail", []),
    ("expect_column_to_exist", {"column": "x"}, "pass", []),
    ("expect_column_to_exist", {"column": "nope"}, "fail", []),
    ("expect_column_to_exist", {"column": "x", "column_index": 1}, "pass", []),
    ("expect_column_to_exist", {"column": "x", "column_index": 2}, "fail", []),
    ("expect_column_to_exist", {"column": "x", "column_index": 9}, "fail", []),
    # GX 1.x tests `if column_index:`, so index 0 only checks that the column exists
    ("expect_column_to_exist", {"column": "x", "column_index": 0}, "pass", []),
    ("expect_column_values_to_be_of_type", {"column": "n", "type_": "int64"}, "pass", []),
    ("expect_column_values_to_be_of_type", {"column": "x", "type_": "int64"}, "fail", []),
    ("expect_column_values_to_be_of_type", {"column": "n", "type_": "int"}, "pass", []),
    ("expect_column_values_to_be_of_type", {"column": "x", "type_": "float"}, "pass", []),
    ("expect_column_values_to_be_of_type", {"column": "n", "type_": "string"}, "fail", []),
    ("expect_column_values_to_be_of_type", {"column": "b", "type_": "bool"}, "pass", []),
    ("expect_column_values_to_be_of_type", {"column": "ts", "type_": "datetime64"}, "pass", []),
    ("expect_column_values_to_be_of_type", {"column": "ts", "type_": "int"}, "fail", []),
    ("expect_column_values_to_be_in_type_list", {"column": "n", "type_list": ["int64", "float64"]}, "pass", []),
    ("expect_column_values_to_be_in_type_list", {"column": "n", "type_list": ["int", "str"]}, "pass", []),
    ("expect_column_values_to_be_in_type_list", {"column": "b", "type_list": ["bool"]}, "pass", []),
    # the dtype itself must be listed: datetime64[ns] is not the generic datetime64 (GX 1.x)
    ("expect_column_values_to_be_in_type_list", {"column": "ts", "type_list": ["datetime64", "int"]}, "fail", []),
    ("expect_column_values_to_be_in_type_list", {"column": "ts", "type_list": ["datetime64[ns]"]}, "pass", []),
    ("expect_column_values_to_be_in_type_list", {"column": "x", "type_list": ["int", "str"]}, "fail", []),
    ("expect_column_values_to_be_in_type_list", {"column": "x", "type_list": ["int64"]}, "fail", []),
]

# (type, kwargs, the key the error names, how GX treats it): "construct" = GX's expectation
# class refuses the arguments; "run" = GX accepts them but raises when the metric runs;
# "coerced" = GX's class quietly reads it as another value; "stricter" = GX would coerce a
# string to a number, privgov's own typing refuses it first (both in docs/quality.md).
REFUSED: list[tuple[str, dict, str, str]] = [
    ("expect_column_values_to_be_in_set", {"column": "z", "value_set": None}, "kwargs.value_set", "construct"),
    ("expect_column_values_to_not_be_in_set", {"column": "z", "value_set": None}, "kwargs.value_set", "construct"),
    ("expect_column_value_lengths_to_be_between", {"column": "w", "min_value": None, "max_value": None},
     "kwargs.min_value", "construct"),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": 5, "max_value": 1}, "kwargs.min_value", "run"),
    ("expect_column_values_to_not_be_null", {"column": "x", "mostly": 1.1}, "kwargs.mostly", "construct"),
    ("expect_column_values_to_be_unique", {"column": "n", "mostly": -0.1}, "kwargs.mostly", "construct"),
    ("expect_column_values_to_be_between", {"column": "x", "min_value": "x"}, "kwargs.min_value", "construct"),
    ("expect_column_mean_to_be_between", {"column": "x", "min_value": [1]}, "kwargs.min_value", "construct"),
    ("expect_column_values_to_be_between", {"min_value": 1}, "kwargs.column", "construct"),
    ("expect_column_values_to_be_in_set", {"value_set": [1]}, "kwargs.column", "construct"),
    ("expect_compound_columns_to_be_unique", {}, "kwargs.column_list", "construct"),
    ("expect_column_values_to_be_of_type", {"column": "n"}, "kwargs.type_", "construct"),
    ("expect_column_values_to_match_regex", {"column": "z", "regex": "ello", "colum": "z"}, "kwargs.colum",
     "construct"),
    ("expect_table_row_count_to_equal", {"value": "5"}, "kwargs.value", "stricter"),
    ("expect_table_row_count_to_be_between", {"max_value": "4"}, "kwargs.max_value", "stricter"),
    # GX's class reads 1.5 as 1 (its published rule: length bounds "must be integers")
    ("expect_column_value_lengths_to_be_between", {"column": "w", "min_value": 1.5, "max_value": 3},
     "kwargs.min_value", "coerced"),
]
