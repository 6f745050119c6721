"""MLflow tracking of governed training runs (the optional `privgov[mlflow]` extra).

Why only the card: a tracking server is read by more people than the
workspace, so a training run logs exactly what its model card publishes -
the model's hyper-parameters and DP settings as parameters, the card's
held-out metrics and (ε, δ) as metrics, the card itself as `model_card.json`
- and nothing computed from the training data beyond that (no loss curve, no
row counts). Like lineage, tracking is off unless an admin configures it, and
a tracking failure (MLflow not installed, store unreachable) never fails the
governed run: it is logged as a warning and audited as `tracking_error`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from governance.evidence.integrations import TrackingSettings, load

if TYPE_CHECKING:  # pragma: no cover
    from governance.workspace import Workspace

log = logging.getLogger(__name__)
_MODEL_PARAMS = ("name", "hidden", "optimizer", "lr", "epochs", "expected_batch_size")
_PRIVACY_PARAMS = ("privacy_unit", "accountant", "sigma", "sample_rate", "steps", "clip_norm", "clipping", "sampler",
                   "bounding", "group_size", "epsilon_covers")


def log_training_run(ws: "Workspace", run_uid: str, principal: str, dataset: str) -> str | None:
    """Log one finished training run to MLflow; returns the MLflow run id, None when tracking is off
    or it failed (the failure is audited)."""
    try:
        settings = load(ws.root).tracking
        if settings is None:
            return None
        facts = _facts(ws, run_uid)
        if not facts:
            return None
        return _log(settings, run_uid, dataset, facts)
    except Exception as exc:  # noqa: BLE001 - a tracking server must never fail a governed run
        _record_error(ws, run_uid, principal, dataset, exc)
        return None


def params_and_metrics(card: dict[str, Any], epsilon: float | None, delta: float | None
                       ) -> tuple[dict[str, str], dict[str, float]]:
    """What the card publishes, as MLflow parameters and metrics."""
    model, privacy = card.get("model") or {}, card.get("privacy") or {}
    params = {f"model.{k}": str(model[k]) for k in _MODEL_PARAMS if model.get(k) is not None}
    params.update({f"privacy.{k}": str(privacy[k]) for k in _PRIVACY_PARAMS if privacy.get(k) is not None})
    params.update({k: str(card[k]) for k in ("dataset", "dataset_version", "run_uid") if card.get(k) is not None})
    metrics = {k: float(v) for k, v in (card.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if epsilon is not None:
        metrics["epsilon"] = float(epsilon)
    if delta is not None:
        metrics["delta"] = float(delta)
    return {k: v[:500] for k, v in params.items()}, metrics


@contextlib.contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    """MLflow 3 refuses its file store unless MLFLOW_ALLOW_FILE_STORE is set; set it for this call only."""
    if not uri.startswith("file:") or os.environ.get("MLFLOW_ALLOW_FILE_STORE"):
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


def _log(settings: TrackingSettings, run_uid: str, dataset: str, facts: dict[str, Any]) -> str:
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise RuntimeError("MLflow is not installed; install the extra: pip install 'privgov[mlflow]'") from None
    params, metrics = params_and_metrics(facts["card"], facts["epsilon"], facts["delta"])
    with _file_store_allowed(settings.uri):
        client = MlflowClient(tracking_uri=settings.uri)
        exp = client.get_experiment_by_name(settings.experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(settings.experiment)
        run = client.create_run(exp_id, run_name=f"{facts['pipeline']} {run_uid}",
                                tags={"privgov.run_uid": run_uid, "privgov.dataset": dataset,
                                      "privgov.pipeline": facts["pipeline"]})
        rid = run.info.run_id
        now = int(time.time() * 1000)
        client.log_batch(rid, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                         params=[Param(k, v) for k, v in params.items()])
        client.log_dict(rid, facts["card"], "model_card.json")
        client.set_terminated(rid, "FINISHED")
    return str(rid)


def _facts(ws: "Workspace", run_uid: str) -> dict[str, Any]:
    from governance.storage.store import Run

    with ws.session() as s:
        run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
        if run is None or not run.model_card_json:
            return {}
        return {"card": dict(run.model_card_json), "epsilon": run.epsilon, "delta": run.delta,
                "pipeline": run.pipeline}


def _record_error(ws: "Workspace", run_uid: str, principal: str, dataset: str, exc: BaseException) -> None:
    from governance.evidence.recorder import record_event

    message = f"{type(exc).__name__}: {exc}"[:300]
    log.warning("MLflow tracking of run %s failed: %s", run_uid, message)
    try:
        record_event(ws, principal=principal, action="tracking_error", decision="info", resource=dataset,
                     reason=message, details={"run_uid": run_uid})
    except Exception:  # noqa: BLE001
        log.warning("could not record tracking_error for run %s in the audit log", run_uid, exc_info=True)
