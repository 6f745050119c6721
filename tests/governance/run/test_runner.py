"""The governed run end to end, and every bad input it must refuse cleanly."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ADULT_DIR, REPO, new_workspace
from tests.governance.job_pipeline import set_dotted

CLINIC = REPO / "examples" / "clinic" / "pipeline.yaml"


def small_spec(tmp_path: Path, **changes) -> Path:
    """The clinic example, shrunk so it runs in seconds, with `changes` applied."""
    spec = yaml.safe_load(CLINIC.read_text())
    spec["source"]["rows"] = 3000
    spec["training"]["epochs"] = 2
    spec["training"]["device"] = "cpu"
    spec["quality"]["suite"] = str(REPO / "examples" / "clinic" / "suite.json")
    spec["policy"] = str(REPO / "policies" / "examples" / "clinic.yaml")
    spec["report"] = str(tmp_path / "report.html")
    set_dotted(spec, changes)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def error_line(res: subprocess.CompletedProcess) -> str:
    """The one `error:` line; progress lines may precede it on stderr, nothing follows it."""
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr
    return errors[0]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "GX_ANALYTICS_ENABLED": "False", **(env or {})}
    return subprocess.run([sys.executable, "-m", "governance.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=full_env, timeout=600)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One successful governed run shared by the read-only checks below."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    tmp = tmp_path_factory.mktemp("run")
    ws, tokens = new_workspace(tmp / "ws")
    token = tokens["demo"]
    spec = load_pipeline(small_spec(tmp))
    summary = run_pipeline(ws, spec, token)
    return ws, summary, tmp, token


def test_run_stores_encrypted_version_and_trains(finished_run) -> None:
    ws, summary, tmp, _ = finished_run
    assert summary.status == "succeeded"
    assert summary.version == 1
    assert summary.rows_clean > 0 and summary.rows_clean + summary.rows_quarantined <= summary.rows_ingested
    assert summary.raw_validation_success is False  # planted dirt is caught
    assert summary.epsilon_spent is not None and 0 < summary.epsilon_spent <= 1.0 + 1e-6
    assert 0.0 <= summary.metrics["accuracy"] <= 1.0
    assert Path(summary.report_path).read_text().count("<img") >= 1


def test_no_plaintext_in_workspace(finished_run) -> None:
    """Known identifiers from the generated input appear nowhere on disk."""
    from governance.demo.sample_data import generate_clinic

    ws, summary, tmp, _ = finished_run
    raw = generate_clinic(3000, seed=7)
    probes = [str(v) for v in raw["email"].dropna().head(20)] + [str(v) for v in raw["ssn"].dropna().head(20)]
    probes += [str(v) for v in raw["name"].dropna().head(20)]
    blobs = [p.read_bytes() for p in ws.root.rglob("*") if p.is_file()]
    for probe in probes:
        needle = probe.encode()
        assert not any(needle in b for b in blobs), f"plaintext value found in workspace: {probe[:3]}…"


def test_audit_verify_and_tamper_named(finished_run, tmp_path) -> None:
    import shutil

    ws, summary, tmp, _ = finished_run
    assert cli("audit", "verify", "--workspace", str(ws.root)).returncode == 0
    copy = tmp_path / "ws-copy"
    shutil.copytree(ws.root, copy)
    db = sqlite3.connect(copy / "privgov.db")
    seq, reason = db.execute("SELECT seq, reason FROM audit_events ORDER BY seq LIMIT 1 OFFSET 3").fetchone()
    db.execute("UPDATE audit_events SET action = action || 'x' WHERE seq = ?", (seq,))
    db.commit()
    db.close()
    res = cli("audit", "verify", "--workspace", str(copy))
    assert res.returncode == 4
    assert str(seq) in res.stdout + res.stderr


def test_second_run_spends_more_budget_and_versions(finished_run) -> None:
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    ws, summary, tmp, token = finished_run
    spec = load_pipeline(small_spec(tmp))
    second = run_pipeline(ws, spec, token)
    assert second.version > summary.version  # (the quarantine may take a number in between)
    with ws.session() as s:
        from governance.storage import catalog

        ds = catalog.find_dataset(s, "clinic-visits")
        lineage, unit = ds.lineage_id, ds.privacy_unit
    st = ws.ledger.status(lineage, unit)
    assert len(st.runs) == 2
    assert st.composed_epsilon < st.naive_sum_epsilon  # RDP composition beats the naive sum
    assert st.composed_epsilon <= st.epsilon_cap


def test_policy_deny_stops_before_decrypt(workspace, tmp_path) -> None:
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from privacy.errors import AccessDenied

    ws, tokens = workspace
    spec = load_pipeline(small_spec(tmp_path, purpose="marketing"))
    with pytest.raises(AccessDenied, match="marketing"):
        run_pipeline(ws, spec, tokens["demo"])
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        denies = s.query(AuditEvent).filter(AuditEvent.decision == "deny", AuditEvent.action == "train").count()
        reads = s.query(AuditEvent).filter(AuditEvent.action == "read").count()
    assert denies == 1 and reads == 0


def test_wrong_token_is_denied_and_audited(workspace, tmp_path) -> None:
    ws, tokens = workspace
    res = cli("run", str(small_spec(tmp_path)), "--workspace", str(ws.root), "--token", "pgv_nope_nope")
    assert res.returncode == 3
    assert "token" in error_line(res)
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        assert s.query(AuditEvent).filter(AuditEvent.decision == "deny").count() >= 1
        from governance.storage.store import DatasetVersion

        assert s.query(DatasetVersion).count() == 0


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"training.epsilon": 0}, "epsilon"),
        ({"training.epsilon": -1}, "epsilon"),
        ({"training.delta": 1}, "delta"),
        ({"training.epochz": 3}, "epochz"),
        ({"sourcez": 1}, "sourcez"),
    ],
)
def test_bad_spec_is_one_line_error(workspace, tmp_path, changes, needle) -> None:
    ws, tokens = workspace
    res = cli("run", str(small_spec(tmp_path, **changes)), "--workspace", str(ws.root), "--token", tokens["demo"])
    assert res.returncode == 2, res.stderr
    line = error_line(res)
    assert needle in line and "line" in line


@pytest.mark.parametrize("content", [None, b"", b"\x00\x01\x02\xff\xfe garbage \x00" * 20])
def test_bad_source_file(workspace, tmp_path, content) -> None:
    ws, tokens = workspace
    data = tmp_path / "visits.csv"
    if content is not None:
        data.write_bytes(content)
    spec = small_spec(tmp_path, **{"source": {"path": str(data)}})
    res = cli("run", str(spec), "--workspace", str(ws.root), "--token", tokens["demo"])
    assert res.returncode == 2, res.stderr
    assert "visits.csv" in error_line(res)
    with ws.session() as s:
        from governance.storage.store import DatasetVersion

        assert s.query(DatasetVersion).count() == 0  # nothing half-written


def test_pipeline_cannot_change_the_bound_privacy_unit(workspace, tmp_path) -> None:
    ws, tokens = workspace
    res = cli("run", str(small_spec(tmp_path, privacy_unit="no_such_col")), "--workspace", str(ws.root),
              "--token", tokens["demo"])
    assert res.returncode == 3 and "no_such_col" in error_line(res) and "patient_id" in error_line(res)


def test_bound_privacy_unit_missing_from_the_data_is_named(workspace, tmp_path) -> None:
    from tests.conftest import REPO, bind_examples, policy_with_privacy

    ws, tokens = workspace
    policy = policy_with_privacy(REPO / "policies" / "examples" / "clinic.yaml", tmp_path / "p.yaml",
                                 {"unit": "no_such_col", "max_rows_per_unit": 5})
    bind_examples(ws, {"clinic-units": (policy, ["phi"], "no_such_col")})
    res = cli("run", str(small_spec(tmp_path, dataset="clinic-units", privacy_unit=None, training=None, policy=None)),
              "--workspace", str(ws.root), "--token", tokens["demo"])
    assert res.returncode == 2 and "no_such_col" in error_line(res)


def test_pipeline_may_restate_the_row_unit_it_is_bound_with(workspace, tmp_path) -> None:
    """`privacy_unit: row` in a pipeline agrees with a policy that declares `unit: row`."""
    from tests.conftest import REPO, bind_examples, policy_with_privacy

    ws, tokens = workspace
    policy = policy_with_privacy(REPO / "policies" / "examples" / "clinic.yaml", tmp_path / "p.yaml",
                                 {"unit": "row", "statement": "each row is a distinct person in this test"})
    bind_examples(ws, {"clinic-rows": (policy, ["phi"], None)})
    res = cli("run", str(small_spec(tmp_path, dataset="clinic-rows", privacy_unit="row", training=None, policy=None)),
              "--workspace", str(ws.root), "--token", tokens["demo"])
    assert res.returncode == 0, res.stderr
    res = cli("run", str(small_spec(tmp_path, dataset="clinic-rows", privacy_unit="patient_id", training=None,
                                    policy=None)), "--workspace", str(ws.root), "--token", tokens["demo"])
    assert res.returncode == 3 and "patient_id" in error_line(res)


@pytest.mark.parametrize("where", ["training.sampler", "training.options"])
def test_shuffled_sampling_is_refused_in_a_governed_run(workspace, tmp_path, where) -> None:
    from governance.storage.store import DatasetVersion

    ws, tokens = workspace
    value = "shuffle_unsafe" if where == "training.sampler" else {"sampler": "shuffle_unsafe"}
    res = cli("run", str(small_spec(tmp_path, **{where: value})), "--workspace", str(ws.root),
              "--token", tokens["demo"])
    line = error_line(res)
    assert res.returncode == 2 and "sampler" in line, res.stderr
    if where == "training.options":
        assert "Poisson" in line
    with ws.session() as s:
        assert s.query(DatasetVersion).count() == 0  # refused at load: nothing stored


def test_missing_and_locked_workspace(workspace, tmp_path) -> None:
    ws, tokens = workspace
    res = cli("run", str(small_spec(tmp_path)), "--workspace", str(tmp_path / "nowhere"), "--token", tokens["demo"])
    assert res.returncode == 2 and "no privgov workspace" in res.stderr
    with ws.lock():
        res = cli("run", str(small_spec(tmp_path)), "--workspace", str(ws.root), "--token", tokens["demo"])
    assert res.returncode == 2 and "locked" in res.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (ADULT_DIR / "adult.data").exists(), reason="UCI Adult files not present")
def test_adult_pipeline_accuracy(workspace, tmp_path) -> None:
    """The issue's bar: DP model at ε=1, δ=1e-5 with test accuracy ≥ 0.84 on adult.test."""
    ws, tokens = workspace
    spec = yaml.safe_load((REPO / "examples" / "adult" / "pipeline.yaml").read_text())
    spec["quality"]["suite"] = str(REPO / "examples" / "adult" / "suite.json")
    spec["policy"] = str(REPO / "policies" / "examples" / "adult.yaml")
    spec["report"] = str(tmp_path / "adult.html")
    spec["training"]["device"] = "cpu"
    path = tmp_path / "adult.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    res = cli("run", str(path), "--workspace", str(ws.root), "--token", tokens["demo"], "--adult-dir", str(ADULT_DIR),
              "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    import json

    summary = json.loads(res.stdout)
    assert summary["epsilon_spent"] <= 1.0 + 1e-6
    assert summary["metrics"]["accuracy"] >= 0.84


def test_group_bounding_plans_for_the_declared_rows_per_unit_and_ledger_counts_per_unit(workspace, tmp_path) -> None:
    """bounding: group trains on up to the declared `max_rows_per_unit` rows of each patient;
    epsilon is per patient at that declared bound (never the data's own largest count), and
    the ledger counts that per-patient epsilon."""
    from governance.storage import catalog
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from governance.storage.store import Run

    from tests.conftest import bind_examples

    ws, tokens = workspace
    # Group runs are charged by basic composition, from a share of the cap the policy sets aside.
    # The rows bound is the policy's (3 visits per patient here); the pipeline does not set it.
    policy = tmp_path / "clinic-basic.yaml"
    text = (REPO / "policies" / "examples" / "clinic.yaml").read_text()
    assert "max_rows_per_unit: 24" in text
    policy.write_text(text.replace("clinic-visits: {epsilon: 3.0, delta: 1.0e-5}",
                                   "clinic-visits: {epsilon: 3.0, delta: 1.0e-5, basic_share: 0.8}")
                      .replace("max_rows_per_unit: 24", "max_rows_per_unit: 3"))
    bind_examples(ws, {"clinic-visits": (policy, ["phi"], "patient_id")})
    spec = load_pipeline(small_spec(tmp_path, **{"training.bounding": "group", "training.epsilon": 2.0,
                                                 "training.delta": 5.0e-6, "policy": str(policy)}))
    summary = run_pipeline(ws, spec, tokens["demo"])
    assert summary.status == "succeeded"
    with ws.session() as s:
        ds = catalog.find_dataset(s, spec.dataset)
        split = catalog.get_version(s, ds, summary.version).meta_json["train_split"]
        card = s.query(Run).one().model_card_json
        lineage = ds.lineage_id
    assert split["max_rows_per_unit"] > 3  # some patients have more visits than the declared bound
    assert card["privacy"]["group_size"] == 3 and card["privacy"]["bounding"] == "group"
    assert card["privacy"]["units_for_sample_rate"] == 9500 * 3  # rows: declared patients x declared rows
    assert card["privacy"]["ledger_composition"].startswith("basic composition")
    assert summary.epsilon_spent <= 2.0 + 1e-6
    b = ws.ledger.status(lineage, "patient_id")
    assert b.runs[0].epsilon == pytest.approx(summary.epsilon_spent)
    assert not b.runs[0].has_curve  # a per-row curve must not be composed as if it were per patient
    assert b.spent == pytest.approx(summary.epsilon_spent)  # basic composition of the per-unit guarantee


def test_budget_refusal_names_dataset_and_decrypts_nothing(workspace, tmp_path) -> None:
    """ε = 2.95 under a cap of 3: the run's RDP-composed cost is above the cap, so it is refused."""
    from governance.evidence.audit import AuditEvent

    ws, tokens = workspace
    spec = small_spec(tmp_path, **{"training.epsilon": 2.95})
    res = cli("run", str(spec), "--workspace", str(ws.root), "--token", tokens["demo"])
    assert res.returncode == 3
    line = error_line(res)
    assert "dataset `clinic-visits`" in line and "privgov budget show clinic-visits" in line
    with ws.session() as s:
        events = [(e.action, e.decision, (e.details or {}).get("for")) for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
    assert ("budget_reserve", "deny", None) in events
    assert not any(a == "read" and f == "train" for a, _, f in events)  # never decrypted for training
    from governance.storage import catalog

    with ws.session() as s:
        lineage = catalog.find_dataset(s, "clinic-visits").lineage_id
    assert ws.ledger.status(lineage, "patient_id").runs == []


def test_group_run_without_a_basic_share_is_refused_and_stores_nothing(workspace, tmp_path) -> None:
    """The clinic policy sets no basic share: a run the ledger can only charge by basic
    composition does not fit the Renyi filter and is refused before anything is stored."""
    from governance.storage.store import DatasetVersion

    ws, tokens = workspace
    res = cli("run", str(small_spec(tmp_path, **{"training.bounding": "group"})), "--workspace", str(ws.root),
              "--token", tokens["demo"])
    assert res.returncode in (2, 3), res.stderr
    assert "basic_share" in error_line(res)
    with ws.session() as s:
        assert s.query(DatasetVersion).count() == 0
