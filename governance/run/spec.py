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

    path: str | None = Field(default=None, description="CSV or Parquet file, relative to the pipeline file; "
                             "`${VAR}` and `~` are expanded. Give `path` or `sample`.")
    test_path: str | None = Field(default=None, description="Optional held-out file with the same columns, "
                                  "used as the test split instead of a random split.")
    format: Literal["csv", "parquet"] | None = Field(default=None, description="File format; default: "
                                                     "detected from the file name and first bytes.")
    csv: CsvOptions | None = Field(default=None, description="CSV reading options.")
    sample: Literal["clinic"] | None = Field(default=None, description="A built-in synthetic generator instead "
                                             "of a file. Give `path` or `sample`.")
    rows: int = Field(default=20000, gt=0, le=10_000_000, description="Rows the `sample` generator makes "
                      "(in memory).")
    seed: int = Field(default=0, ge=0, lt=2**63, description="Seed of the `sample` generator.")

    @model_validator(mode="after")
    def _one_kind(self) -> "SourceSpec":
        if (self.path is None) == (self.sample is None):
            raise ValueError("give exactly one of `path` (a CSV/Parquet file) or `sample` (a built-in generator)")
        return self


class QualitySpec(_Strict):
    """The quality gate: a Great Expectations suite checked before and after cleaning."""

    suite: str = Field(description="Expectation suite JSON, relative to the pipeline file; its value sets and "
                       "ranges are also the public declarations training encodes features with.")
    engine: Literal["fast", "gx"] = Field(default="fast", description="`fast` (privgov's vectorised engine) or "
                                          "`gx` (Great Expectations itself; slower).")
    on_failure: Literal["quarantine", "fail"] = Field(default="quarantine", description=(
        "Rows that still fail after cleaning are quarantined (stored encrypted, by row id) or stop the run."))
    max_quarantine_share: float = Field(default=0.2, ge=0, le=1, examples=[0.05], description=(
        "The run stops when a larger share of rows would be quarantined."))


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
    """De-identification before anything is stored: declared steps, then the checks."""

    direct_identifiers: list[str] = Field(default_factory=list, description="Columns that identify a person; "
                                          "the run refuses to store any of them in clear (drop or pseudonymize "
                                          "each).")
    steps: list[Annotated[dict[str, Any], AfterValidator(_deid_step)]] = Field(default_factory=list, description=(
        "Steps in order, each `{column, action}`: `drop`, `keep`, `pseudonymize` (HMAC, `domain`), "
        "`suppress_rare`, or `generalize` with `method` `age_band`/`zip_prefix`/`date_truncate`/`round`; "
        "parameters are checked when the pipeline loads (see `privacy/deid/transforms.py`)."))
    quasi_identifiers: list[str] = Field(default_factory=list, description="Columns that together could "
                                         "single a person out; the k-anonymity check groups by them.")
    sensitive: str | None = Field(default=None, examples=["readmitted_30d"], description="The sensitive "
                                  "attribute, recorded with the spec (no check uses it yet).")
    require_k: int | None = Field(default=None, ge=1, description="The run stops unless every group of rows "
                                  "sharing the quasi-identifiers has at least k rows.")
    suppress_below_k: bool = Field(default=False, examples=[True], description=(
        "Withhold rows in groups smaller than `require_k` (counted, by row id) instead of stopping; "
        "count-based, so epsilon then covers only the stored version."))


class PiiAcknowledgement(_Strict):
    """`pii: {COLUMN: {action: keep, reason: "..."}}`: store a detected identifier in clear, knowingly.

    Why a reason: the PII gate refuses to store a direct identifier untransformed; keeping
    one is allowed only where the bound policy says `pii: {allow_keep: true}`, and the
    reason goes into the audit log (`pii_keep`) for the reviewer who asks why."""

    action: Literal["keep"] = Field(examples=["keep"], description="Only `keep`: store the column untransformed.")
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S", examples=["needed to contact patients"],
                        description="Why it is kept; written to the audit log.")


# TrainConfig fields the training block sets itself (see PipelineRunner._train_config).
_DECLARED_TRAIN_FIELDS = frozenset({
    "target", "positive_label", "features", "categorical", "model", "hidden", "epsilon", "delta", "epochs",
    "batch_size", "max_grad_norm", "device", "seed", "unit_column", "sensitive_columns", "test_fraction",
    "bounding", "lr", "optimizer",
})


class TrainingSpec(_Strict):
    """Differentially private training on the stored version (needs a `train` grant and a bound budget)."""

    target: str = Field(description="Label column.")
    positive: Any = Field(default=1, description="Label value counted as the positive class.")
    features: list[str] | None = Field(default=None, description="Feature columns; default: every column "
                                       "except the target, the row id and the privacy unit.")
    categorical: list[str] | None = Field(default=None, description="Features encoded as categories (their "
                                          "value sets must be declared in the quality suite).")
    model: Literal["mlp", "logreg"] = Field(default="mlp", description="Model family.")
    hidden: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(default_factory=lambda: [64], description=(
        "Hidden layer widths of the MLP."))
    epsilon: float = Field(description="Target epsilon of this run (> 0); reserved in the ledger before any "
                           "data is decrypted.")
    delta: float = Field(default=1e-5, description="Target delta of this run, in (0, 1).")
    epochs: int = Field(default=10, gt=0, description="Passes over the data (Poisson-sampled steps).")
    batch_size: int = Field(default=512, gt=0, description="Expected batch size; the sample rate is batch_size "
                            "/ the declared bound on privacy units.")
    lr: float | None = Field(default=None, gt=0, description="Learning rate; default: the trainer's for the "
                             "optimizer.")
    optimizer: Literal["adam", "sgd"] | None = Field(default=None, examples=["adam"], description="Optimizer; "
                                                     "default: the trainer's (adam).")
    max_grad_norm: float = Field(default=1.0, gt=0, description="Per-example gradient clipping norm.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="`auto` uses a GPU when present.")
    seed: int = Field(default=0, ge=0, lt=2**63, description="Weight initialisation and split seed; the "
                      "sampling masks and noise never derive from it.")
    sensitive_columns: list[str] = Field(default_factory=list, description="Columns metrics are broken down by "
                                         "(groups below the minimum size are suppressed).")
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="Share of privacy units held out for "
                                 "testing when the source has no `test_path`.")
    bounding: Literal["one_row_per_unit", "group"] = Field(default="one_row_per_unit", examples=["group"], description=(
        "`one_row_per_unit` samples one row per unit each epoch; `group` trains on up to the policy's "
        "`max_rows_per_unit` rows and pays group privacy."))
    checkpoint_every_epochs: int = Field(default=1, ge=0, examples=[5], description=(
        "Encrypted checkpoint every N epochs (`privgov run --resume`); 0: none, a killed run cannot resume."))
    options: dict[str, Any] = Field(default_factory=dict, description=(
        "Further trainer settings by name (e.g. `max_units`, the declared bound on privacy units); unknown "
        "names and settings declared above are refused."))

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
            if v.get("sampler", "poisson") != "poisson":
                raise ValueError(f"sampler {str(v['sampler'])[:40]!r}: a governed run is accounted with Poisson "
                                 "sampling only (shuffled batches are not covered by the accountant)")
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
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="Pipeline name, used in one-line errors and the report.")
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Dataset the run writes a "
                         "new version of; an admin must have bound a policy to it.")
    source: SourceSpec = Field(description="Where the rows come from.")
    row_id: str = Field(default="row_id", description="Column assigned at ingest; validation, quarantine and "
                        "findings refer to rows by it.")
    engine: Literal["pandas", "spark"] = Field(default="pandas", examples=["spark"], description=(
        "Where the data stages run: `pandas` in this process, or `spark` on PySpark (`pip install "
        "'privgov[spark]'`): validation with GX's Spark engine, cleaning and de-identification as Spark "
        "column expressions, and the version stored as encrypted Parquet partitions sealed on the executors "
        "(see docs/spark.md)."))
    spark_master: str | None = Field(default=None, examples=["spark://spark-master:7077"], description=(
        "With `engine: spark`, the cluster to run on (`spark.master`); default `$PRIVGOV_SPARK_MASTER`, "
        "else `local[2]`."))
    privacy_unit: str | None = Field(default=None, description="May only restate the unit the bound policy "
                                     "declares (a different one is refused).")
    tags: list[str] = Field(default_factory=list, description="Dataset tags; must be among those the dataset "
                            "was bound with.")
    quality: QualitySpec | None = Field(default=None, description="The quality gate; without it nothing is "
                                        "validated.")
    cleaning: Annotated[list[dict[str, Any]], AfterValidator(_cleaning_steps)] = Field(
        default_factory=list, description="Cleaning steps in order, each `{step: NAME, ...}` from the cleaning "
        "registry (`governance/data/cleaning/steps.py`), checked when the pipeline loads.")
    deid: DeidSpec = Field(default_factory=DeidSpec, description="De-identification.")
    batch_rows: Annotated[int, Field(ge=0)] | Literal["auto"] | None = Field(
        default=None, examples=[200000, "auto"], description=(
            "Stream the source in record batches of this many rows (`auto`: from available memory, see "
            "docs/streaming.md), so peak memory does not grow with the file; unset: read it in memory. "
            "`privgov run --batch-rows` overrides it."))
    pii: dict[Annotated[str, Field(min_length=1, max_length=200)], PiiAcknowledgement] = Field(
        default_factory=dict, description="Acknowledged detected identifiers kept in clear, "
        "`{COLUMN: {action: keep, reason}}`; the bound policy must allow keeps (`pii.allow_keep`), each is audited.")
    policy: str | None = Field(default=None, description="Policy file; if given it must be the very text an "
                               "admin bound to the dataset (the bound policy is the only one that applies).")
    principal: str = Field(description="Who the pipeline claims to run as; the token decides, a mismatch is "
                           "refused and audited.")
    purpose: str = Field(description="Purpose declared for training (a grant must allow it).")
    ingest_purpose: str = Field(default="pipeline", description="Purpose declared for ingest and validation.")
    training: TrainingSpec | None = Field(default=None, description="DP training; without it the run stops "
                                          "after storing the version.")
    report: str | None = Field(default=None, description="HTML report written after a successful run "
                               "(relative to the working directory).")

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
