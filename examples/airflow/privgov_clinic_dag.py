"""Airflow DAG: the clinic pipeline as a governed, audited privgov run (``pip install 'privgov[airflow]'``).

Every task calls the documented Python API (``privgov.api``, see docs/api.md), so each
step goes through the same token check, bound policy and audit log as the ``privgov``
CLI. Nothing touches the workspace while Airflow parses this file.

Configure on the worker (e.g. from your secrets backend):
  PRIVGOV_WORKSPACE       the workspace directory (``privgov init``)
  PRIVGOV_TOKEN           the pipeline principal's token (``privgov token issue``)
  PRIVGOV_ANALYST_TOKEN   a token whose principal holds a ``read_masked`` grant (quality review)
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

from privgov import api

PIPELINE = Path(__file__).resolve().parents[1] / "clinic" / "pipeline.yaml"
DATASET = "clinic-visits"
PURPOSE = "readmission-model"


def _workspace() -> api.Workspace:
    return api.open_workspace(os.environ.get("PRIVGOV_WORKSPACE"))


@dag(dag_id="privgov_clinic_readmission", schedule="@daily", start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
     catchup=False, tags=["privgov"])
def privgov_clinic_readmission() -> None:
    @task
    def audit_log_intact() -> int:
        """Refuse to build on a tampered audit log (the CLI exits 4)."""
        report = api.verify_audit(_workspace())
        if not report.ok:
            raise api.IntegrityFailure(f"audit log verification failed: {report.problems[0]}")
        return report.events

    @task
    def training_allowed() -> str:
        """Ask the bound policy first; the question itself is audited."""
        check = api.check_decision(_workspace(), "train", DATASET, purpose=PURPOSE)
        if not check.allowed:
            raise api.AccessDenied(check.reason)
        return check.rule or ""

    @task
    def governed_run() -> dict[str, Any]:
        """Ingest, validate, clean, de-identify, store, train under DP; the summary goes to XCom."""
        summary = api.run_pipeline(_workspace(), PIPELINE)
        return {"run_uid": summary.run_uid, "version": summary.version, "status": summary.status,
                "rows_quarantined": summary.rows_quarantined, "epsilon_spent": summary.epsilon_spent}

    @task
    def quality_review(run: dict[str, Any]) -> int:
        """An analyst's masked read of the version just stored (masks and row filter applied, audited)."""
        released = api.read_version(_workspace(), DATASET, purpose="quality-review",
                                    token=os.environ["PRIVGOV_ANALYST_TOKEN"], version=run["version"])
        return len(released.frame)

    run = governed_run()
    audit_log_intact() >> training_allowed() >> run
    quality_review(run)


privgov_clinic_readmission()
