"""Expectation suites as plain GX 1.x JSON, checked without importing GX.

Why plain JSON: a suite written here must open in Great Expectations itself
(`gx.ExpectationSuite(**json)`), and one written with GX must run here. Loading
is checked against a static list of GX 1.x core expectation types so that a
typo is reported before the (slow) GX import, naming the expectation index.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from governance.errors import InputError

# GX 1.24 core expectation types that run on a pandas DataFrame.
GX_CORE_TYPES: frozenset[str] = frozenset({
    "expect_column_distinct_values_to_be_in_set", "expect_column_distinct_values_to_contain_set",
    "expect_column_distinct_values_to_equal_set", "expect_column_kl_divergence_to_be_less_than",
    "expect_column_max_to_be_between", "expect_column_mean_to_be_between",
    "expect_column_median_to_be_between", "expect_column_min_to_be_between",
    "expect_column_most_common_value_to_be_in_set", "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_pair_values_to_be_equal", "expect_column_pair_values_to_be_in_set",
    "expect_column_proportion_of_non_null_values_to_be_between",
    "expect_column_proportion_of_unique_values_to_be_between",
    "expect_column_quantile_values_to_be_between", "expect_column_stdev_to_be_between",
    "expect_column_sum_to_be_between", "expect_column_to_exist", "expect_column_type_to_be",
    "expect_column_unique_value_count_to_be_between", "expect_column_value_lengths_to_be_between",
    "expect_column_value_lengths_to_equal", "expect_column_value_z_scores_to_be_less_than",
    "expect_column_values_to_be_between", "expect_column_values_to_be_dateutil_parseable",
    "expect_column_values_to_be_decreasing", "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_in_type_list", "expect_column_values_to_be_increasing",
    "expect_column_values_to_be_json_parseable", "expect_column_values_to_be_null",
    "expect_column_values_to_be_of_type", "expect_column_values_to_be_unique",
    "expect_column_values_to_match_json_schema", "expect_column_values_to_match_like_pattern",
    "expect_column_values_to_match_like_pattern_list", "expect_column_values_to_match_regex",
    "expect_column_values_to_match_regex_list", "expect_column_values_to_match_strftime_format",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_not_be_null",
    "expect_column_values_to_not_be_outliers", "expect_column_values_to_not_match_like_pattern",
    "expect_column_values_to_not_match_like_pattern_list", "expect_column_values_to_not_match_regex",
    "expect_column_values_to_not_match_regex_list", "expect_compound_columns_to_be_unique",
    "expect_multicolumn_sum_to_equal", "expect_multicolumn_values_to_be_equal",
    "expect_select_column_values_to_be_unique_within_record", "expect_table_column_count_to_be_between",
    "expect_table_column_count_to_equal", "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set", "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
})

_COLUMN_KEYS = ("column", "column_A", "column_B")
_LIST_KEYS = ("column_list",)


def expectation_columns(exp: dict[str, Any]) -> list[str]:
    """Columns an expectation reads (its domain), in declaration order."""
    kw = exp.get("kwargs", {})
    cols = [kw[k] for k in _COLUMN_KEYS if isinstance(kw.get(k), str)]
    for k in _LIST_KEYS:
        if isinstance(kw.get(k), list):
            cols.extend(str(c) for c in kw[k])
    return cols


def parse_suite(data: Any, *, source: str = "suite") -> dict[str, Any]:
    """Check the shape of a suite dict; return a normalised copy (name, expectations, meta)."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object with 'name' and 'expectations'")
    name = data.get("name") or data.get("expectation_suite_name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{source}: missing 'name'; expected a non-empty suite name")
    exps = data.get("expectations")
    if not isinstance(exps, list):
        raise InputError(f"{source}: 'expectations' must be a list of {{'type', 'kwargs'}} objects")
    out: list[dict[str, Any]] = []
    for i, exp in enumerate(exps):
        if not isinstance(exp, dict):
            raise InputError(f"{source}: expectation {i} is not an object; expected {{'type', 'kwargs'}}")
        etype = exp.get("type") or exp.get("expectation_type")
        if etype not in GX_CORE_TYPES:
            raise InputError(
                f"{source}: expectation {i} has unknown type {etype!r}; expected a GX 1.x core "
                "expectation such as 'expect_column_values_to_not_be_null'"
            )
        kwargs = exp.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise InputError(f"{source}: expectation {i} ({etype}) 'kwargs' must be an object")
        item = {"type": etype, "kwargs": dict(kwargs)}
        if exp.get("meta"):
            item["meta"] = exp["meta"]
        out.append(item)
    suite = {"name": name, "expectations": out}
    if data.get("meta"):
        suite["meta"] = data["meta"]
    return suite


def check_columns(suite: dict[str, Any], columns: Iterable[str], *, source: str = "suite") -> None:
    """Raise InputError naming every suite column the data lacks.

    `expect_column_to_exist` is exempt: a missing column is its failure, not a spec error.
    """
    have = set(map(str, columns))
    missing: list[str] = []
    for exp in suite["expectations"]:
        if exp["type"] == "expect_column_to_exist":
            continue
        missing.extend(c for c in expectation_columns(exp) if c not in have and c not in missing)
    if missing:
        raise InputError(
            f"{source}: columns not in the data: {', '.join(map(repr, missing))}; "
            f"expected one of {sorted(have)[:20]}"
        )


def load_suite(path: Path, *, columns: Iterable[str] | None = None) -> dict[str, Any]:
    """Read a GX 1.x suite JSON file; optionally check its columns against the data's."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: suite file not found; expected a GX suite JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", "?")
        raise InputError(f"{path}: not valid JSON (line {line}); expected a GX suite JSON object") from None
    suite = parse_suite(data, source=str(path))
    if columns is not None:
        check_columns(suite, columns, source=str(path))
    return suite
