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
from governance.data.quality.gx_rules import check_with_gx
from governance.data.quality.suite_model import check_suite_shape

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

# A suite is read whole and parsed recursively: bound both before trusting it.
MAX_SUITE_BYTES = 16 * 1024 * 1024
MAX_SUITE_DEPTH = 64


def expectation_columns(exp: dict[str, Any]) -> list[str]:
    """Columns an expectation reads (its domain), in declaration order."""
    kw = exp.get("kwargs", {})
    cols = [kw[k] for k in _COLUMN_KEYS if isinstance(kw.get(k), str)]
    for k in _LIST_KEYS:
        if isinstance(kw.get(k), list):
            cols.extend(str(c) for c in kw[k])
    return cols


def parse_suite(data: Any, *, source: str = "suite") -> dict[str, Any]:
    """Check the shape and kwarg types of a suite dict; return a normalised copy.

    Why typed: the engines index kwargs directly (``df[kw["column"]]``, ``re``,
    comparisons); a wrong type must stop here as one line naming
    ``expectations[i].kwargs.key``, not as a KeyError deep inside validation.
    Then GX's own rules (``gx_rules.check_with_gx``): an expectation GX refuses
    never reaches an engine, so neither engine can pass, fail or crash on it."""
    suite = check_suite_shape(data, source, GX_CORE_TYPES)
    check_with_gx(suite, source)
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
    suite = parse_suite(read_suite_json(path), source=str(path))
    if columns is not None:
        check_columns(suite, columns, source=str(path))
    return suite


def read_suite_json(path: Path) -> Any:
    """Read suite JSON with bounded size and depth; duplicate keys are errors.

    Why: ``json.loads`` recurses once per nesting level (RecursionError past
    ~1000) and keeps the last of duplicate keys silently; neither may reach a user
    as a traceback or as a quietly different suite."""
    try:
        if path.is_dir():
            raise InputError(f"{path}: expected a GX suite JSON file, found a directory")
        with path.open("rb") as fh:
            raw = fh.read(MAX_SUITE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: suite file not found; expected a GX suite JSON file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read suite file ({exc.strerror or type(exc).__name__})") from None
    except ValueError:  # e.g. a NUL byte in a path taken from a pipeline file
        raise InputError(f"{ascii(str(path))}: cannot read suite file (not a valid path)") from None
    if len(raw) > MAX_SUITE_BYTES:
        raise InputError(f"{path}: suite file is larger than {MAX_SUITE_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: suite file is not UTF-8 text (bad byte at offset {exc.start})") from None
    except _DuplicateKey as exc:
        raise InputError(f"{path}: duplicate key {exc}; expected each key once per object") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}); expected a GX suite JSON object") from None
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        raise InputError(f"{path}: not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested deeper than {MAX_SUITE_DEPTH} levels") from None
    if _depth(data) > MAX_SUITE_DEPTH:
        raise InputError(f"{path}: JSON nested deeper than {MAX_SUITE_DEPTH} levels")
    return data


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(repr(key[:80]))
        out[key] = value
    return out


def _depth(data: Any) -> int:
    """Nesting depth, iteratively (the data may be deeper than the stack)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            if deepest > MAX_SUITE_DEPTH:
                return deepest
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest
