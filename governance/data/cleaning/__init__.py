"""Declared cleaning steps: `build_steps(specs)` then `apply_steps(df, steps, row_id_column=...)`.

Spec format, one object per step, parameters inline:
    [{"step": "normalize_missing", "markers": ["?"]},
     {"step": "strip_suffix", "columns": ["income"], "suffix": "."},
     {"step": "map_values", "columns": ["sex"], "mapping": {"M": "male", "m": "male"}},
     {"step": "impute", "columns": ["age"], "strategy": "median"}]
"""
from governance.data.cleaning import steps as _steps  # noqa: F401  (registers the built-ins)
from governance.data.cleaning.base import (
    Step,
    StepParams,
    StepReport,
    apply_steps,
    available_steps,
    build_steps,
    register_step,
    step_classes,
)

__all__ = ["Step", "StepParams", "StepReport", "apply_steps", "available_steps", "build_steps", "register_step",
           "step_classes"]
