"""OpenLineage RunEvents for governed runs: START when a run is admitted, COMPLETE or FAIL at its end.

Why here and shaped like this: lineage backends (Marquez, DataHub, OpenMetadata)
are where data teams look for what produced a dataset; a governed run should
appear there like any other job. What goes out is what the model card and the
report already publish - names, column types, the version number, hashes of
public declarations (policy text, quality suite), expectation counts, the
de-identification method per column, ε and δ, the card's metrics - and never a
cell value, a row count or a hash of the data. A failing transport never fails
or changes the governed run: the error is logged as a warning and recorded as a
`lineage_error` audit event. Off unless the workspace configures a transport
(`privgov lineage configure`); openlineage-python is imported only then.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.evidence.integrations import LineageSettings, load

if TYPE_CHECKING:  # pragma: no cover
    from governance.workspace import Workspace

log = logging.getLogger(__name__)
_RUN_NAMESPACE = uuid.UUID("5f0c2a8e-6c1b-5d0e-9a57-8d7f3b1e2c40")  # fixed: the same run_uid gives the same runId
PRIVGOV_NAMESPACE = "privgov"  # datasets in the encrypted store


@dataclass(frozen=True)
class LineageRun:
    """What a governed run declares, handed over by the runner (evidence does not import run/)."""

    run_uid: str
    pipeline: str
    dataset: str
    principal: str
    sources: tuple[tuple[str, str], ...]  # (namespace, name): ("file", absolute path) or ("privgov-sample", name)
    suite: Path | None = None
    engine: str | None = None
    deid_steps: list[dict[str, Any]] = field(default_factory=list)
    require_k: int | None = None
    policy_sha256: str | None = None
    privacy_unit: str | None = None
    epsilon_target: float | None = None
    delta: float | None = None
    training: bool = False


def run_id(run_uid: str) -> str:
    """The OpenLineage runId (a UUID) of a privgov run; stable, so START and COMPLETE/FAIL share it."""
    return str(uuid.uuid5(_RUN_NAMESPACE, f"privgov-run:{run_uid}"))


def settings_of(ws: "Workspace") -> LineageSettings | None:
    return load(ws.root).lineage


# --------------------------------------------------------------------------- emitting
def run_started(ws: "Workspace", facts: LineageRun) -> None:
    """Emit START (no-op when lineage is off)."""
    _emit_safely(ws, facts, "START", lambda s: _event(s, facts, "START", status="running"))


def run_finished(ws: "Workspace", facts: LineageRun, *, status: str, error: BaseException | None = None,
                 epsilon_target: float | None = None) -> None:
    """Emit COMPLETE for a run that succeeded, FAIL for one refused or failed (no-op when off)."""
    state = "COMPLETE" if status == "succeeded" else "FAIL"
    _emit_safely(ws, facts, state, lambda s: _event(s, facts, state, status=status, error=error, ws=ws,
                                                    epsilon_target=epsilon_target))


def _emit_safely(ws: "Workspace", facts: LineageRun, state: str, build: Any) -> None:
    try:
        settings = settings_of(ws)
    except Exception as exc:  # noqa: BLE001 - unreadable settings must not stop a governed run
        _record_error(ws, facts, state, "settings", exc)
        return
    if settings is None:
        return
    try:
        client = make_client(settings)
        client.emit(build(settings))
        client.close(timeout=settings.timeout_s)
    except Exception as exc:  # noqa: BLE001 - the lineage backend is never allowed to fail the run
        _record_error(ws, facts, state, settings.transport, exc)


def _record_error(ws: "Workspace", facts: LineageRun, state: str, transport: str, exc: BaseException) -> None:
    from governance.evidence.recorder import record_event

    message = f"{type(exc).__name__}: {exc}"[:300]
    log.warning("OpenLineage %s event for run %s not delivered (%s transport): %s", state, facts.run_uid,
                transport, message)
    try:
        record_event(ws, principal=facts.principal, action="lineage_error", decision="info", resource=facts.dataset,
                     reason=message, details={"run_uid": facts.run_uid, "event": state, "transport": transport})
    except Exception:  # noqa: BLE001 - never let evidence about evidence break the run
        log.warning("could not record lineage_error for run %s in the audit log", facts.run_uid, exc_info=True)


def make_client(settings: LineageSettings) -> Any:
    """An OpenLineageClient on exactly the configured transport.

    The client's own configuration sources (``openlineage.yml``, ``OPENLINEAGE__*``
    variables) are overridden so they cannot add environment variables, git
    metadata or other facets to privgov's events."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider

    if settings.transport == "file":
        transport: Any = FileTransport(FileConfig(log_file_path=settings.target, append=True))
    else:
        key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        auth = ApiKeyTokenProvider({"api_key": key}) if key else TokenProvider({})
        retry = {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.1,
                 "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["POST"]}
        transport = HttpTransport(HttpConfig(url=settings.target, timeout=settings.timeout_s, auth=auth, retry=retry))
    config = {"facets": {"environment_variables": [], "source_code_location": {"disabled": True}},
              "tags": {"job": {}, "run": {}}, "filters": []}
    return OpenLineageClient(transport=transport, config=config)


# --------------------------------------------------------------------------- building events
def _event(settings: LineageSettings, facts: LineageRun, state: str, *, status: str,
           error: BaseException | None = None, ws: "Workspace | None" = None,
           epsilon_target: float | None = None) -> Any:
    from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run, job_type_job

    from governance.evidence import lineage_facets as pf

    stored = _stored_facts(ws, facts.run_uid) if ws is not None and state != "START" else {}
    run_facets: dict[str, Any] = {"privgov": pf.PrivgovRunFacet(
        runUid=facts.run_uid, dataset=facts.dataset, principal=facts.principal, status=status,
        policySha256=facts.policy_sha256, privacyUnit=facts.privacy_unit,
        epsilonTarget=epsilon_target if epsilon_target is not None else facts.epsilon_target,
        epsilonSpent=stored.get("epsilon"), delta=facts.delta if facts.training else None, producer=pf.PRODUCER)}
    if error is not None:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=_error_text(error), programmingLanguage="PYTHON", producer=pf.PRODUCER)
    job = Job(namespace=settings.namespace, name=facts.pipeline, facets={
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="PRIVGOV",
                                                jobType="GOVERNED_RUN", producer=pf.PRODUCER)})
    inputs = [InputDataset(namespace=ns, name=name) for ns, name in facts.sources]
    return RunEvent(eventType=getattr(RunState, state), eventTime=dt.datetime.now(dt.timezone.utc).isoformat(),
                    run=Run(runId=run_id(facts.run_uid), facets=run_facets), job=job, inputs=inputs,
                    outputs=_outputs(facts, stored), producer=pf.PRODUCER)


def _error_text(error: BaseException) -> str:
    """Refusals (policy, budget) are sent with their message: one line naming principals, datasets,
    policies and declared targets. Every other error is named by type only: a quality-gate message
    carries failing-row counts, and an input or library error may quote a cell."""
    from privacy.errors import AccessDenied, BudgetExceeded

    if isinstance(error, (AccessDenied, BudgetExceeded)):
        return f"{type(error).__name__}: {error}"[:1000]
    return f"{type(error).__name__} (message withheld; the run's reason is in the workspace: privgov audit log)"


def _outputs(facts: LineageRun, stored: dict[str, Any]) -> list[Any]:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import dataset_version_dataset, schema_dataset

    from governance.evidence import lineage_facets as pf

    if stored.get("version") is None:
        return []
    facets: dict[str, Any] = {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(stored["version"]),
                                                                      producer=pf.PRODUCER),
        "schema": schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name=str(c["name"]), type=str(c.get("dtype", "")))
            for c in stored.get("schema", [])], producer=pf.PRODUCER),
        "privgov_deidentification": pf.PrivgovDeidentificationDatasetFacet(
            columns=[pf.ColumnMethod(column=c, method=m) for c, m in deid_methods(facts.deid_steps)],
            requiredK=facts.require_k, producer=pf.PRODUCER),
    }
    if facts.suite is not None and stored.get("validations"):
        facets["privgov_quality"] = pf.PrivgovQualityDatasetFacet(
            suiteName=stored["validations"][0]["suite_name"], suiteSha256=file_sha256(facts.suite),
            engine=facts.engine, producer=pf.PRODUCER,
            results=[pf.QualityResult(stage=v["stage"], success=v["success"], evaluatedExpectations=v["evaluated"],
                                      failedExpectations=v["failed"]) for v in stored["validations"]])
    outputs = [OutputDataset(namespace=PRIVGOV_NAMESPACE, name=facts.dataset, facets=facets)]
    card = stored.get("card") or {}
    if card:
        privacy = card.get("privacy", {})
        metrics = {k: float(v) for k, v in (card.get("metrics") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        model = pf.PrivgovModelDatasetFacet(
            model=str(card.get("model", {}).get("name", "unknown")),
            differentiallyPrivate=bool(privacy.get("differentially_private", False)),
            epsilon=float(privacy.get("epsilon", stored.get("epsilon") or 0.0)),
            delta=float(privacy.get("delta", facts.delta or 0.0)), privacyUnit=privacy.get("privacy_unit"),
            trainedOnVersion=stored["version"], metrics=metrics, producer=pf.PRODUCER)
        outputs.append(OutputDataset(namespace=PRIVGOV_NAMESPACE, name=f"{facts.dataset}/models/{facts.pipeline}",
                                     facets={"version": dataset_version_dataset.DatasetVersionDatasetFacet(
                                         datasetVersion=facts.run_uid, producer=pf.PRODUCER),
                                         "privgov_model": model}))
    return outputs


def deid_methods(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(column, method name) per declared step: `drop`, `pseudonymize`, `generalize:age_band`, ..."""
    out = []
    for step in steps:
        action = str(step.get("action", ""))
        method = f"{action}:{step['method']}" if action == "generalize" and step.get("method") else action
        out.append((str(step.get("column", "")), method))
    return out


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _stored_facts(ws: "Workspace", run_uid: str) -> dict[str, Any]:
    """What the run stored, read back from the catalog: version number, column types, expectation
    counts, ε spent and the card (the card is published; the rest are names and counts)."""
    from governance.storage.store import DatasetVersion, Run, ValidationRecord

    with ws.session() as s:
        run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
        if run is None or run.version_id is None:
            return {}
        v = s.get(DatasetVersion, run.version_id)
        records = (s.query(ValidationRecord).filter(ValidationRecord.version_id == run.version_id)
                   .order_by(ValidationRecord.id).all())
        return {
            "version": int(v.version), "schema": list(v.schema_json or []), "epsilon": run.epsilon,
            "card": dict(run.model_card_json or {}),
            "validations": [{"stage": r.stage, "success": bool(r.success), "evaluated": int(r.evaluated),
                             "failed": int(r.failed_expectations), "suite_name": r.suite_name} for r in records],
        }
