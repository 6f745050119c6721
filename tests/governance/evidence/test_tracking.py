"""MLflow tracking (the privgov[mlflow] extra): a real governed training run logged to a local file store."""
from __future__ import annotations

import json

import pytest

from tests.conftest import new_workspace
from tests.governance.run.test_runner import small_spec

mlflow = pytest.importorskip("mlflow", reason="the optional extra is not installed: pip install 'privgov[mlflow]'")


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    from governance.evidence.integrations import Integrations, TrackingSettings, save
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    tmp = tmp_path_factory.mktemp("tracking")
    ws, tokens = new_workspace(tmp / "ws")
    store = tmp / "mlruns"
    save(ws.root, Integrations(tracking=TrackingSettings(uri=store.as_uri(), experiment="clinic")))
    summary = run_pipeline(ws, load_pipeline(small_spec(tmp)), tokens["demo"])
    return ws, summary, store


def test_training_run_logs_params_metrics_epsilon_and_card(tracked_run) -> None:
    from mlflow.tracking import MlflowClient

    from governance.evidence.tracking import _file_store_allowed
    from governance.storage.store import Run

    ws, summary, store = tracked_run
    assert summary.status == "succeeded"
    with ws.session() as s:
        card = s.query(Run).filter(Run.run_uid == summary.run_uid).one().model_card_json
    with _file_store_allowed(store.as_uri()):
        client = MlflowClient(tracking_uri=store.as_uri())
        exp = client.get_experiment_by_name("clinic")
        runs = client.search_runs([exp.experiment_id])
        assert len(runs) == 1
        run = runs[0]
        assert run.info.status == "FINISHED" and run.data.tags["privgov.run_uid"] == summary.run_uid
        assert run.data.metrics["epsilon"] == pytest.approx(summary.epsilon_spent)
        assert run.data.metrics["delta"] == pytest.approx(1e-5)
        assert run.data.metrics["accuracy"] == pytest.approx(card["metrics"]["accuracy"])
        assert run.data.params["model.name"] == card["model"]["name"]
        assert run.data.params["privacy.sigma"] == str(card["privacy"]["sigma"])
        local = client.download_artifacts(run.info.run_id, "model_card.json", str(store.parent / "dl"))
    assert json.loads(open(local).read()) == card


def test_only_what_the_card_publishes_is_logged() -> None:
    from governance.evidence.tracking import params_and_metrics

    card = {"model": {"name": "mlp", "lr": 0.01}, "privacy": {"sigma": 1.2, "epsilon": 1.0},
            "metrics": {"accuracy": 0.8, "note": "text"}, "dataset": "d"}
    params, metrics = params_and_metrics(card, 0.9, 1e-5)
    assert params == {"model.name": "mlp", "model.lr": "0.01", "privacy.sigma": "1.2", "dataset": "d"}
    assert metrics == {"accuracy": 0.8, "epsilon": 0.9, "delta": 1e-5}


def test_tracking_failure_never_fails_the_run_and_is_audited(workspace, tmp_path) -> None:
    """A store MLflow cannot write (its path is a file): the run succeeds, tracking_error is audited."""
    from governance.evidence.audit import AuditEvent
    from governance.evidence.integrations import Integrations, TrackingSettings, save
    from governance.evidence.tracking import log_training_run

    ws, tokens = workspace
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    save(ws.root, Integrations(tracking=TrackingSettings(uri=(blocker / "mlruns").as_uri())))
    from governance.storage.store import Run

    with ws.session() as s:  # a finished run as training leaves it (the card is what gets logged)
        s.add(Run(run_uid="feedbeef", pipeline="p", dataset_name="clinic-visits", principal="demo-ml-engineer",
                  purpose="x", status="succeeded", epsilon=0.5, delta=1e-5, model_card_json={"metrics": {}}))
    assert log_training_run(ws, "feedbeef", "demo-ml-engineer", "clinic-visits") is None
    with ws.session() as s:
        errs = s.query(AuditEvent).filter(AuditEvent.action == "tracking_error").all()
    assert len(errs) == 1 and errs[0].principal == "demo-ml-engineer"
