"""Check a suite's arguments with Great Expectations' own rules, before any engine runs.

Why here and not in each engine: a quality gate that silently passes is worse
than none. The fast engine used to report success for arguments GX refuses
(``value_set: null``), blame every row for an empty range, and crash on wrong
types; the GX engine reported a refused expectation as "failed, 0 rows". Both
engines now run only suites that GX itself accepts: each expectation is
instantiated as its GX 1.x class (pydantic validation of every kwarg, the
class's own root validators, ``severity``), and the argument check GX makes
only when its metric runs (``min_value > max_value`` on
``expect_column_values_to_be_between``) is made here too.

GX costs seconds to import, so it is imported inside :func:`check_with_gx`,
never at module import (``privgov --help`` is tested for that). A suite that
passed is remembered by the hash of its JSON, so loading it and then
validating it does not repeat the work.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from governance.errors import InputError
from governance.data.quality.gx_import import import_gx
from governance.data.quality.suite_model import SEVERITIES
# Types where GX accepts min_value > max_value at construction and then raises when the
# metric runs (``column_values.between``). Elsewhere GX answers "fail" (every row, for
# value lengths; the statistic, for mean/min/max), and so does the fast engine: a loud
# failure, not a refusal, so privgov gives GX's answer there.
_RANGE_TYPES = frozenset({"expect_column_values_to_be_between"})
_CHECKED: set[str] = set()


def check_with_gx(suite: dict[str, Any], source: str) -> None:
    """Raise one-line InputError for the first expectation GX would refuse.

    ``suite`` is the normalised form from ``suite_model.check_suite_shape``.
    The message names the source, ``expectations[i]``, the kwarg and the type, in
    the shape suite_model uses: ``s.json: expectations[2].kwargs.type_: GX refuses it
    for expect_column_values_to_be_of_type (field required); expected ...``."""
    digest = hashlib.sha256(json.dumps(suite, sort_keys=True, default=str).encode()).hexdigest()
    if digest in _CHECKED:
        return
    for i, exp in enumerate(suite["expectations"]):
        _check_range(exp, f"{source}: expectations[{i}]")
    import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for i, exp in enumerate(suite["expectations"]):
        at = f"{source}: expectations[{i}]"
        try:
            obj = ExpectationConfiguration(type=exp["type"], kwargs=dict(exp["kwargs"]),
                                           severity=exp.get("severity", "critical")).to_domain_obj()
        except Exception as exc:  # pydantic (v1 API inside GX), GX config errors, ValueError
            raise InputError(_gx_message(at, exp["type"], exc)) from None
        _refuse_coerced(at, exp, obj.configuration.kwargs)
    _CHECKED.add(digest)


def _refuse_coerced(at: str, exp: dict[str, Any], seen: dict[str, Any]) -> None:
    """Refuse a kwarg GX would read as another value (pydantic coercion).

    Why: GX's classes coerce quietly - a length bound of 1.5 becomes 1 - so GX and
    the fast engine would validate different suites. 4 read as 4.0 is the same value."""
    for key, mine in exp["kwargs"].items():
        if key in seen and not _same(mine, seen[key]):
            raise InputError(f"{at}.kwargs.{key}: GX reads {_short(repr(mine))} as {_short(repr(seen[key]))} "
                             f"for {exp['type']}; expected a value GX takes as written (a whole number for a length)")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # an exotic object whose == does not return a bool
        return False


def _check_range(exp: dict[str, Any], at: str) -> None:
    kw = exp["kwargs"]
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if exp["type"] in _RANGE_TYPES and _number(lo) and _number(hi) and lo > hi:
        raise InputError(f"{at}.kwargs.min_value: {lo} is greater than max_value {hi} for {exp['type']}; "
                         "expected min_value <= max_value (GX refuses this range)")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _gx_message(at: str, etype: str, exc: Exception) -> str:
    """One line from a GX/pydantic error: the kwarg it names and GX's own reason."""
    errors = exc.errors() if callable(getattr(exc, "errors", None)) else None
    if errors:
        first = errors[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "__root__"]
        msg = str(first.get("msg", "invalid"))
        key = loc[0] if loc else _key_in(msg)
        where = f"{at}.kwargs.{key}" if key else f"{at}.kwargs"
        return f"{where}: GX refuses it for {etype} ({_short(msg)}); expected the GX 1.x arguments for this type"
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "severity" in msg.lower():
        return f"{at}.severity: {_short(msg)}; expected one of {', '.join(SEVERITIES)}"
    return f"{at}.kwargs: GX refuses it for {etype} ({type(exc).__name__}: {_short(msg)})"


def _key_in(msg: str) -> str | None:
    """The kwarg a root-validator message is about (``min_value and max_value cannot ...``)."""
    for key in ("min_value", "max_value", "value_set", "column_list", "column", "value", "mostly"):
        if key in msg:
            return key
    return None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."
