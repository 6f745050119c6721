"""Data quality: GX 1.x suites, two validation engines, batch validation, suggestions.

Nothing here imports great_expectations at import time; only the `gx` engine
(and the fast engine's fallback) does, inside the call.
"""
from governance.data.quality.batches import MERGEABLE_TYPES, validate_parquet_batches
from governance.data.quality.engines import available_engines, register_engine, validate
from governance.data.quality.result import ExpectationResult, ValidationResult
from governance.data.quality.suggest import suggest_suite
from governance.data.quality.suite import GX_CORE_TYPES, check_columns, load_suite, parse_suite

__all__ = [
    "GX_CORE_TYPES",
    "MERGEABLE_TYPES",
    "ExpectationResult",
    "ValidationResult",
    "available_engines",
    "check_columns",
    "load_suite",
    "parse_suite",
    "register_engine",
    "suggest_suite",
    "validate",
    "validate_parquet_batches",
]
