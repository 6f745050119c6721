"""The typed shape of a GX 1.x suite, as the fast and GX engines consume it.

Why a model: the engines read kwargs directly (``df[kw["column"]]``,
``str.contains(kw["regex"])``, ``v >= kw["min_value"]``), so a suite with a
number where a column name belongs, a string where a bound belongs, or a regex
that does not compile used to fail deep inside pandas or Arrow. Here every kwarg
the engines read is typed, each expectation type names the kwargs it needs, and
the first problem becomes one line: ``suite.json: expectations[3].kwargs.min_value:
expected a number``. Kwargs this module does not know pass through untouched
(GX validates them itself, see ``gx_engine.run_gx``).
"""
from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from governance.errors import InputError

Number = Union[StrictInt, Annotated[StrictFloat, Field(allow_inf_nan=False)]]
Scalar = Union[StrictStr, StrictInt, Annotated[StrictFloat, Field(allow_inf_nan=False)], StrictBool, None]
ColumnName = Annotated[StrictStr, Field(min_length=1)]

# What each kwarg must be, in the words the error line uses.
_EXPECTED: dict[str, str] = {
    "column": "a column name (string)", "column_A": "a column name (string)",
    "column_B": "a column name (string)", "column_list": "a non-empty list of column names (strings)",
    "value_set": "a list of strings, numbers, booleans or nulls",
    "min_value": "a number", "max_value": "a number", "value": "a whole number >= 0",
    "strict_min": "true or false", "strict_max": "true or false",
    "mostly": "a number between 0 and 1", "regex": "a regular expression (string)",
    "regex_list": "a list of regular expressions (strings)", "type_": "a type name (string)",
    "type_list": "a list of type names (strings)", "column_index": "a whole number >= 0",
    "ignore_row_if": "one of all_values_are_missing, any_value_is_missing, never",
    "row_condition": "a string", "condition_parser": "a string",
}

# GX 1.x ``FailureSeverity`` values; an expectation without one is "critical", as in GX.
SEVERITIES = ("critical", "warning", "info")

# Kwargs each type needs before an engine may index them.
_NEEDS_REGEX = {"expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"}
_NEEDS_REGEX_LIST = {"expect_column_values_to_match_regex_list", "expect_column_values_to_not_match_regex_list"}
_NEEDS_VALUE_SET = {
    "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set",
    "expect_column_distinct_values_to_be_in_set", "expect_column_distinct_values_to_contain_set",
    "expect_column_distinct_values_to_equal_set", "expect_column_most_common_value_to_be_in_set",
}
_NEEDS_VALUE = {"expect_column_value_lengths_to_equal", "expect_table_row_count_to_equal",
                "expect_table_column_count_to_equal"}
_NEEDS_A_BOUND = {
    "expect_column_values_to_be_between", "expect_column_value_lengths_to_be_between",
    "expect_column_mean_to_be_between", "expect_column_min_to_be_between", "expect_column_max_to_be_between",
    "expect_table_row_count_to_be_between",
}
_NEEDS_COLUMN_LIST = {"expect_compound_columns_to_be_unique", "expect_multicolumn_sum_to_equal",
                      "expect_multicolumn_values_to_be_equal",
                      "expect_select_column_values_to_be_unique_within_record"}


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise ValueError(f"regular expression does not compile ({str(exc)[:60]})") from None
    return pattern


class Kwargs(BaseModel):
    """The kwargs the engines read, strictly typed; any other GX kwarg passes through."""

    model_config = ConfigDict(extra="allow")

    column: Optional[ColumnName] = None
    column_A: Optional[ColumnName] = None
    column_B: Optional[ColumnName] = None
    column_list: Optional[Annotated[list[ColumnName], Field(min_length=1)]] = None
    value_set: Optional[list[Scalar]] = None
    min_value: Optional[Number] = None
    max_value: Optional[Number] = None
    value: Optional[Annotated[StrictInt, Field(ge=0)]] = None
    strict_min: Optional[StrictBool] = None
    strict_max: Optional[StrictBool] = None
    mostly: Optional[Number] = None
    regex: Optional[StrictStr] = None
    regex_list: Optional[list[StrictStr]] = None
    type_: Optional[StrictStr] = None
    type_list: Optional[list[StrictStr]] = None
    column_index: Optional[Annotated[StrictInt, Field(ge=0)]] = None
    ignore_row_if: Optional[Literal["all_values_are_missing", "any_value_is_missing", "never"]] = None
    row_condition: Optional[StrictStr] = None
    condition_parser: Optional[StrictStr] = None

    @field_validator("mostly")
    @classmethod
    def _mostly_is_a_share(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and not 0 <= v <= 1:
            raise ValueError(f"expected a number between 0 and 1, got {v}")
        return v

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _compiles(v)

    @field_validator("regex_list")
    @classmethod
    def _regexes_compile(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        return None if v is None else [_compiles(p) for p in v]


# Keys GX 1.x itself accepts on a suite and on an expectation (``ExpectationSuite(**json)``
# rejects others); a typo such as ``kwarg`` must not silently empty an expectation.
SUITE_KEYS = frozenset({"name", "expectation_suite_name", "expectations", "meta", "id", "notes",
                        "data_asset_type", "ge_cloud_id"})
EXPECTATION_KEYS = frozenset({"type", "expectation_type", "kwargs", "meta", "id", "notes", "description",
                              "rendered_content", "severity"})


def _refuse_unknown_keys(data: dict[str, Any], allowed: frozenset[str], at: str, expected: str) -> None:
    """InputError naming the first key of ``data`` not in ``allowed`` (a typo, usually)."""
    extra = [k for k in data if k not in allowed]
    if extra:
        raise InputError(f"{at}: unknown key {_short(repr(extra[0]))}; expected {expected}")


def _optional_meta(data: dict[str, Any], where: str) -> dict[str, Any] | None:
    """The free-form ``meta`` object if one is given; InputError if it is not an object."""
    meta = data.get("meta")
    if not meta:
        return None
    if not isinstance(meta, dict):
        raise InputError(f"{where}: expected an object")
    return meta


def _required(etype: str, kw: dict[str, Any]) -> tuple[str, str] | None:
    """(kwarg, what is missing) for the first kwarg ``etype`` needs and lacks."""
    if etype.startswith("expect_column_pair_"):
        for key in ("column_A", "column_B"):
            if kw.get(key) is None:
                return key, f"required for {etype}; expected {_EXPECTED[key]}"
    elif etype in _NEEDS_COLUMN_LIST:
        if kw.get("column_list") is None:
            return "column_list", f"required for {etype}; expected {_EXPECTED['column_list']}"
    elif etype.startswith("expect_column_") and kw.get("column") is None:
        return "column", f"required for {etype}; expected {_EXPECTED['column']}"
    for names, key in ((_NEEDS_REGEX, "regex"), (_NEEDS_REGEX_LIST, "regex_list"),
                       (_NEEDS_VALUE_SET, "value_set"), (_NEEDS_VALUE, "value")):
        if etype in names and kw.get(key) is None:
            return key, f"required for {etype}; expected {_EXPECTED[key]}"
    if etype in _NEEDS_A_BOUND and kw.get("min_value") is None and kw.get("max_value") is None:
        return "min_value", f"{etype} needs min_value or max_value (or both); expected a number"
    return None


def _kwarg_problem(err: dict[str, Any]) -> tuple[str, str]:
    """Turn one pydantic error on Kwargs into (dotted path, what was expected)."""
    loc = [p for p in err.get("loc", ()) if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    key = str(loc[0]) if loc else "kwargs"
    path = key + "".join(f"[{p}]" for p in loc[1:2] if isinstance(p, int))
    if err.get("type") == "value_error":
        return path, str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return path, f"expected {_EXPECTED.get(key, str(err.get('msg', 'a valid value')).lower())}"


def check_suite_shape(data: Any, source: str, known_types: Collection[str]) -> dict[str, Any]:
    """Validate a suite dict; return ``{"name", "expectations": [{"type", "kwargs", "severity"?, "meta"?}], "meta"?}``.

    Raises one-line :class:`InputError`: ``SOURCE: expectations[i].kwargs.KEY: expected ...``."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object with 'name' and 'expectations'")
    _refuse_unknown_keys(data, SUITE_KEYS, source, ", ".join(sorted(SUITE_KEYS)))
    name = data.get("name") or data.get("expectation_suite_name")
    if not isinstance(name, str) or not name:
        raise InputError(f"{source}: missing 'name'; expected a non-empty suite name")
    exps = data.get("expectations")
    if not isinstance(exps, list):
        raise InputError(f"{source}: 'expectations' must be a list of {{'type', 'kwargs'}} objects")
    out: list[dict[str, Any]] = []
    for i, exp in enumerate(exps):
        at = f"{source}: expectations[{i}]"
        if not isinstance(exp, dict):
            raise InputError(f"{at}: expectation {i} is not an object; expected {{'type', 'kwargs'}}")
        _refuse_unknown_keys(exp, EXPECTATION_KEYS, at, "type, kwargs, meta (or another GX 1.x key)")
        etype = exp.get("type") or exp.get("expectation_type")
        if not isinstance(etype, str) or etype not in known_types:
            shown = etype if isinstance(etype, str) else type(etype).__name__
            raise InputError(
                f"{at}.type: expectation {i} has unknown type {_short(shown)!r}; expected a GX 1.x core "
                "expectation such as 'expect_column_values_to_not_be_null'"
            )
        kwargs = exp.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise InputError(f"{at}.kwargs: expectation {i} ({etype}) 'kwargs' must be an object")
        try:
            Kwargs.model_validate(kwargs)
        except ValidationError as exc:
            path, what = _kwarg_problem(exc.errors()[0])
            raise InputError(f"{at}.kwargs.{path}: {what}") from None
        missing = _required(etype, kwargs)
        if missing is not None:
            raise InputError(f"{at}.kwargs.{missing[0]}: {missing[1]}")
        item: dict[str, Any] = {"type": etype, "kwargs": dict(kwargs)}
        severity = exp.get("severity")
        if severity is not None:
            if severity not in SEVERITIES:
                raise InputError(f"{at}.severity: expected one of {', '.join(SEVERITIES)}, "
                                 f"got {_short(repr(severity))}")
            item["severity"] = severity
        if (meta := _optional_meta(exp, f"{at}.meta")) is not None:
            item["meta"] = meta
        out.append(item)
    suite: dict[str, Any] = {"name": name, "expectations": out}
    if (meta := _optional_meta(data, f"{source}: meta")) is not None:
        suite["meta"] = meta
    return suite


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."
