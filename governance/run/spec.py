"""The declared pipeline: one YAML file a reviewer can read and diff.

Why a schema: a governed run is only as trustworthy as its declaration. Unknown
keys and wrong types are rejected up front (naming key and line) so a typo can
never silently disable a cleaning step or change the privacy target.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from governance.data.csv_options import CsvOptions
from governance.yaml_source import parse_model
from privacy.errors import InputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


__all__ = ["CsvOptions", "PiiAcknowledgement", "PipelineSpec", "load_pipeline"]


class SourceSpec(_Strict):
    """Either a file (`path`, optional `test_path`) or the built-in generator (`sample`)."""

    path: str | None = None
    test_path: str | None = None
    format: Literal["csv", "parquet"] | None = None
    csv: CsvOptions | None = None
    sample: Literal["clinic"] | None = None
    rows: int = Field(default=20000, gt=0, le=10_000_000)  # generated in memory
    seed: int = Field(default=0, ge=0, lt=2**63)  # numpy refuses negative seeds

    @model_validator(mode="after")
    def _one_kind(self) -> "SourceSpec":
        if (self.path is None) == (self.sample is None):
            raise ValueError("give exactly one of `path` (a CSV/Parquet file) or `sample` (a built-in generator)")
        return self


class QualitySpec(_Strict):
    suite: str
    engine: Literal["fast", "gx"] = "fast"
    # What happens to rows that still fail after cleaning: quarantine them
    # (encrypted, by row id) or stop the run.
    on_failure: Literal["quarantine", "fail"] = "quarantine"
    max_quarantine_share: float = Field(default=0.2, ge=0, le=1)


def _deid_step(step: dict[str, Any]) -> dict[str, Any]:
    """Check a de-identification step at load time, so a bad one fails before any data is read."""
    from privacy.deid.spec import step_problem  # imports pandas: only when a pipeline is loaded

    problem = step_problem(step)
    if problem:
        raise ValueError(problem)
    return step


def _cleaning_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check cleaning steps' names and parameters at load time (the registry's own checks)."""
    for i, step in enumerate(steps):
        if not all(isinstance(k, str) for k in step) or not isinstance(step.get("step"), str):
            raise ValueError(f"step {i}: expected a mapping with string keys and a `step:` name")
    if steps:
        from governance.data.cleaning import build_steps  # imports pandas

        try:
            build_steps(steps)
        except InputError as exc:
            raise ValueError(str(exc)) from None
    return steps


class DeidSpec(_Strict):
    direct_identifiers: list[str] = Field(default_factory=list)
    steps: list[Annotated[dict[str, Any], AfterValidator(_deid_step)]] = Field(default_factory=list)
    quasi_identifiers: list[str] = Field(default_factory=list)
    sensitive: str | None = None
    require_k: int | None = Field(default=None, ge=1)
    # k-anonymization = generalization + suppression: rows still in classes
    # smaller than k are withheld from the release (counted, by row id).
    suppress_below_k: bool = False


class PiiAcknowledgement(_Strict):
    """`pii: {COLUMN: {action: keep, reason: "..."}}`: store a detected identifier in clear, knowingly.

    Why a reason: the PII gate refuses to store a direct identifier untransformed; keeping
    one is allowed only where the bound policy says `pii: {allow_keep: true}`, and the
    reason goes into the audit log (`pii_keep`) for the reviewer who asks why."""

    action: Literal["keep"]
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")


# TrainConfig fields the training block sets itself (see PipelineRunner._train_config).
_DECLARED_TRAIN_FIELDS = frozenset({
    "target", "positive_label", "features", "categorical", "model", "hidden", "epsilon", "delta", "epochs",
    "batch_size", "max_grad_norm", "device", "seed", "unit_column", "sensitive_columns", "test_fraction",
    "bounding", "lr", "optimizer",
})


class TrainingSpec(_Strict):
    target: str
    positive: Any = 1
    features: list[str] | None = None
    categorical: list[str] | None = None
    model: Literal["mlp", "logreg"] = "mlp"
    hidden: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(default_factory=lambda: [64])
    epsilon: float
    delta: float = 1e-5
    epochs: int = Field(default=10, gt=0)
    batch_size: int = Field(default=512, gt=0)
    lr: float | None = Field(default=None, gt=0)  # None: the trainer's default for the optimizer
    optimizer: Literal["adam", "sgd"] | None = None
    max_grad_norm: float = Field(default=1.0, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = Field(default=0, ge=0, lt=2**63)
    sensitive_columns: list[str] = Field(default_factory=list)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    bounding: Literal["one_row_per_unit", "group"] = "one_row_per_unit"
    checkpoint_every_epochs: int = Field(default=1, ge=0)  # 0: no checkpoints (a killed run cannot resume)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _known_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Options are extra trainer settings; an unknown or already-declared one would be a TypeError later."""
        if v:
            from dataclasses import fields

            from training.trainer import TrainConfig  # imports pandas, not torch

            allowed = {f.name for f in fields(TrainConfig)} - _DECLARED_TRAIN_FIELDS
            unknown = sorted(map(str, set(v) - allowed))
            if unknown:
                raise ValueError(f"unknown option(s) {', '.join(unknown)}; expected any of {', '.join(sorted(allowed))}")
        return v

    @field_validator("epsilon")
    @classmethod
    def _eps(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("epsilon must be > 0")
        return v

    @field_validator("delta")
    @classmethod
    def _delta(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError("delta must be in (0, 1)")
        return v


class PipelineSpec(_Strict):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")  # named in one-line errors
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    source: SourceSpec
    row_id: str = "row_id"
    privacy_unit: str | None = None
    tags: list[str] = Field(default_factory=list)
    quality: QualitySpec | None = None
    cleaning: Annotated[list[dict[str, Any]], AfterValidator(_cleaning_steps)] = Field(default_factory=list)
    deid: DeidSpec = Field(default_factory=DeidSpec)
    pii: dict[Annotated[str, Field(min_length=1, max_length=200)], PiiAcknowledgement] = Field(default_factory=dict)
    policy: str | None = None  # if given, must be the very text an admin bound to the dataset
    principal: str
    purpose: str
    ingest_purpose: str = "pipeline"
    training: TrainingSpec | None = None
    report: str | None = None

    # set after loading: the directory relative paths are resolved against
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _keep_not_transformed(self) -> "PipelineSpec":
        """A column both kept in clear and transformed is a contradiction a reviewer must resolve."""
        transformed = {str(step.get("column")) for step in self.deid.steps if step.get("action") != "keep"}
        both = sorted(set(self.pii) & transformed)
        if both:
            raise ValueError(f"pii: column `{both[0]}` is acknowledged with action keep but deid.steps transforms it; "
                             "remove one of the two")
        return self

    def resolve(self, rel: str) -> Path:
        """Resolve a path from the spec; `${VAR}` and `~` are expanded."""
        if "\0" in rel:
            raise InputError(f"pipeline `{self.name}`: path {rel!r} contains a NUL byte")
        expanded = os.path.expanduser(os.path.expandvars(rel))
        if "${" in expanded or "$" in expanded.split("/")[0]:
            raise InputError(f"pipeline `{self.name}`: path `{rel}` uses an environment variable that is not set")
        p = Path(expanded)
        return p if p.is_absolute() else (self.base_dir / p)


def load_pipeline(path: Path, overrides: dict[str, str] | None = None) -> PipelineSpec:
    """Load and validate a pipeline YAML; relative paths resolve against its folder.

    `overrides` sets environment-style variables (e.g. ``{"PRIVGOV_ADULT_DIR": ...}``)
    used when expanding `${VAR}` in paths.
    """
    if overrides:
        for key, value in overrides.items():
            os.environ[key] = value
    spec = parse_model(path, PipelineSpec)
    assert isinstance(spec, PipelineSpec)
    spec.base_dir = path.resolve().parent
    return spec
