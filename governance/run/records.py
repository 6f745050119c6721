"""Typed records that the stages of a governed run return, and the run summary.

Why: a stage's output is its contract with the next stage and with the
evidence; typed records make that visible (and testable) instead of hiding it
in attributes or string-keyed dicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Ingested:
    frame: pd.DataFrame
    rows: int
    columns: int


@dataclass(frozen=True)
class Validation:
    stage: str  # raw | cleaned
    result: Any  # governance.data.quality.result.ValidationResult
    failing_rows: int
    record_id: int  # the ValidationRecord row; linked to the version this run stores, and only that

    @property
    def success(self) -> bool:
        return bool(self.result.success)


@dataclass(frozen=True)
class Cleaned:
    frame: pd.DataFrame
    steps: list[dict[str, Any]]


@dataclass(frozen=True)
class Quarantined:
    kept: pd.DataFrame
    quarantine: pd.DataFrame | None
    rows: int
    reasons: dict[str, int]


@dataclass(frozen=True)
class Deidentified:
    frame: pd.DataFrame
    steps: list[dict[str, Any]]
    k_anonymity: int | None


@dataclass(frozen=True)
class Reservation:
    """Budget reserved for a training run before anything is stored or decrypted."""

    config: Any  # training.trainer.TrainConfig
    plan: Any  # training.trainer.PrivacyPlan
    epsilon: float
    delta: float
    epsilon_cap: float | None  # per-run cap from the grant's obligations


@dataclass(frozen=True)
class Stored:
    version: int
    version_id: int
    row_count: int
    content_hash: str
    meta: dict[str, Any]
    quarantine_version: int | None


@dataclass(frozen=True)
class Trained:
    epsilon_spent: float
    metrics: dict[str, Any]
    steps: int


@dataclass
class RunSummary:
    """What a run reports back (CLI, JSON output, tests); assembled from the stage records."""

    run_uid: str
    dataset: str
    status: str = "running"
    reason: str | None = None
    version: int | None = None
    quarantine_version: int | None = None
    rows_ingested: int = 0
    rows_clean: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    raw_validation_success: bool | None = None
    clean_validation_success: bool | None = None
    epsilon_target: float | None = None
    epsilon_spent: float | None = None
    delta: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    k_anonymity: int | None = None
    # the PII gate's scan: column, pii_type, kind, confidence, evidence, action (transformed | keep | none)
    pii_findings: list[dict[str, Any]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
