"""Validation results that carry row ids and counts, never data values.

Why: GX's default results copy failing values (names, emails...) into reports.
These classes have no field that could hold a value, so a report built from
them cannot leak one.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ExpectationResult:
    """Outcome of one expectation: counts and failing row ids only."""

    index: int
    type: str
    column: str | None
    success: bool
    unexpected_count: int = 0
    element_count: int = 0
    failing_row_ids: list[Any] = field(default_factory=list)
    engine: str = "fast"
    error: str | None = None  # exception type name when the expectation could not run
    severity: str = "critical"  # GX 1.x severity, carried from the suite (critical|warning|info)

    @property
    def status(self) -> str:
        """``pass``, ``fail`` or ``error`` (could not run: neither a pass nor a fail)."""
        if self.error is not None:
            return "error"
        return "pass" if self.success else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


@dataclass
class ValidationResult:
    """Suite outcome; `failing_row_ids` is the sorted union over expectations."""

    suite: str
    success: bool
    row_count: int
    results: list[ExpectationResult]
    row_id_column: str = "row_id"

    @property
    def failing_row_ids(self) -> list[Any]:
        ids: set[Any] = set()
        for r in self.results:
            ids.update(r.failing_row_ids)
        try:
            return sorted(ids)
        except TypeError:
            return sorted(ids, key=str)

    @property
    def failed(self) -> list[ExpectationResult]:
        """Expectations that ran and failed (an expectation that could not run is in `errors`)."""
        return [r for r in self.results if r.status == "fail"]

    @property
    def errors(self) -> list[ExpectationResult]:
        """Expectations that could not run: the suite's outcome is unknown, never a pass."""
        return [r for r in self.results if r.status == "error"]

    @property
    def status(self) -> str:
        return "error" if self.errors else ("pass" if self.success else "fail")

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "success": self.success,
            "status": self.status,
            "row_count": self.row_count,
            "row_id_column": self.row_id_column,
            "statistics": {
                "evaluated": len(self.results),
                "successful": sum(r.success for r in self.results),
                "unsuccessful": sum(not r.success for r in self.results),
                "errors": len(self.errors),
            },
            "failing_row_ids": self.failing_row_ids,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), default=_plain, **kwargs)


def _plain(obj: Any) -> Any:
    """numpy scalars -> Python numbers for JSON."""
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
