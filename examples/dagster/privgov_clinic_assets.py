"""Dagster assets: the clinic dataset version as a governed privgov run (``pip install 'privgov[dagster]'``).

The asset and its check call the documented Python API (``privgov.api``, see
docs/api.md): the same token check, bound policy and audit log as the CLI.
Load with ``dagster dev -f examples/dagster/privgov_clinic_assets.py``.

Configure: PRIVGOV_WORKSPACE (the workspace directory) and PRIVGOV_TOKEN (the
pipeline principal's token), e.g. from Dagster's environment or secrets.
"""
from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from privgov import api

PIPELINE = Path(__file__).resolve().parents[1] / "clinic" / "pipeline.yaml"
DATASET = "clinic-visits"
PURPOSE = "readmission-model"


def _workspace() -> api.Workspace:
    return api.open_workspace(os.environ.get("PRIVGOV_WORKSPACE"))


@dg.asset(name="clinic_visits_version", description="A new encrypted, de-identified version of clinic-visits "
          "and its DP model, from one governed privgov run.")
def clinic_visits_version(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    ws = _workspace()
    check = api.check_decision(ws, "train", DATASET, purpose=PURPOSE)  # audited like any decision
    if not check.allowed:
        raise api.AccessDenied(check.reason)
    summary = api.run_pipeline(ws, PIPELINE, progress=lambda stage, state: context.log.info(f"{stage}: {state}"))
    facts = {"run_uid": summary.run_uid, "version": summary.version, "rows_clean": summary.rows_clean,
             "rows_quarantined": summary.rows_quarantined, "epsilon_spent": summary.epsilon_spent,
             "delta": summary.delta}
    return dg.MaterializeResult(metadata={k: v for k, v in facts.items() if v is not None})


@dg.asset_check(asset=clinic_visits_version, blocking=True, description="The audit log's hash chain and "
                "signatures verify (privgov audit verify).")
def audit_log_intact() -> dg.AssetCheckResult:
    report = api.verify_audit(_workspace())
    return dg.AssetCheckResult(passed=report.ok, metadata={
        "events": report.events, "checkpoints": report.checkpoints, "problems": "; ".join(report.problems[:5])})


defs = dg.Definitions(assets=[clinic_visits_version], asset_checks=[audit_log_intact])
