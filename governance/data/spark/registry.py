"""Which steps run on Spark, keyed by the same names as the pandas registries.

Why a second registry rather than a method on each pandas step: `governance.data.cleaning`
and `privacy.deid` must not import pyspark (nor may privacy import governance), while one name
must mean one step with one set of pydantic parameters, validated once by the pandas side
(`build_steps`, `parse_specs`). A step is either implemented here or refused here with the
reason; `missing()` lists names that are neither, and a test keeps it empty.
"""
from __future__ import annotations

from typing import Any, Callable

IMPLEMENTED: dict[str, dict[str, Callable[..., Any]]] = {"cleaning": {}, "deid": {}}
REFUSED: dict[str, dict[str, str]] = {"cleaning": {}, "deid": {}}


def implements(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: `fn` is the Spark implementation of step `name` (`kind`: cleaning or deid)."""
    def add(fn: Callable[..., Any]) -> Callable[..., Any]:
        IMPLEMENTED[kind][name] = fn
        return fn
    return add


def refuse(kind: str, name: str, reason: str) -> None:
    """Record that step `name` cannot give the pandas result on Spark, and why (shown in the error)."""
    REFUSED[kind][name] = reason


def deid_key(spec: Any) -> str:
    """`generalize:age_band` for generalize steps, the action otherwise."""
    return f"generalize:{spec.method}" if spec.action == "generalize" else str(spec.action)


def missing(kind: str, names: list[str]) -> list[str]:
    return sorted(n for n in names if n not in IMPLEMENTED[kind] and n not in REFUSED[kind])
