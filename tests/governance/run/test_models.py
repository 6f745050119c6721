"""`privgov predict` and `privgov audit-model` on a stored model, through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import new_workspace
from tests.governance.run.test_runner import cli, error_line, small_spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished governed run; also writes its held-out split (features + label) to CSV."""
    from governance.storage import catalog
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from governance.data.splitting import split_for_training

    tmp = tmp_path_factory.mktemp("models")
    ws, tokens = new_workspace(tmp / "ws", {"demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"]),
                                            "mallory": ("mallory", ["contractor"])})
    spec = load_pipeline(small_spec(tmp))
    summary = run_pipeline(ws, spec, tokens["demo"])
    with ws.session() as s:
        ds = catalog.find_dataset(s, spec.dataset)
        data = catalog.read_version(ws, s, ds, catalog.get_version(s, ds, summary.version))
    _, test = split_for_training(data, spec.privacy_unit, spec.training.test_fraction, spec.training.seed)
    test.to_csv(tmp / "heldout.csv", index=False)
    return ws, summary, tokens, tmp, spec


def _ws(trained) -> list[str]:
    return ["--workspace", str(trained[0].root)]


def test_predict_reproduces_the_recorded_test_accuracy(trained) -> None:
    ws, summary, tokens, tmp, spec = trained
    heldout = pd.read_csv(tmp / "heldout.csv")
    heldout.drop(columns=[spec.training.target]).to_csv(tmp / "score_me.csv", index=False)
    res = cli("predict", summary.run_uid, "--data", str(tmp / "score_me.csv"), "--out", str(tmp / "pred.csv"),
              "--purpose", "readmission-model", "--token", tokens["demo"], *_ws(trained))
    assert res.returncode == 0, res.stderr
    pred = pd.read_csv(tmp / "pred.csv")
    assert list(pred.columns) == ["row_id", "probability", "prediction"]  # no feature values copied out
    assert (pred["row_id"].to_numpy() == heldout["row_id"].to_numpy()).all()
    truth = (heldout[spec.training.target].astype(str) == str(spec.training.positive)).to_numpy()
    accuracy = float(((pred["probability"] >= 0.5).to_numpy() == truth).mean())
    assert accuracy == pytest.approx(summary.metrics["accuracy"], abs=1e-9)
    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        ev = s.query(AuditEvent).filter(AuditEvent.action == "predict", AuditEvent.decision == "info").one()
        assert ev.principal == "demo-ml-engineer" and summary.run_uid in json.dumps(ev.details)


def test_predict_denied_for_contractor_writes_nothing(trained) -> None:
    ws, summary, tokens, tmp, _ = trained
    out = tmp / "mallory.csv"
    res = cli("predict", summary.run_uid, "--data", str(tmp / "heldout.csv"), "--out", str(out),
              "--purpose", "readmission-model", "--token", tokens["mallory"], *_ws(trained))
    assert res.returncode == 3 and "may not `predict`" in error_line(res)
    assert not out.exists()


@pytest.mark.parametrize("case,needle", [
    ("missing_column", "missing feature column(s) ['sex']"),
    ("unknown_run", "denied (no such dataset"),
    ("bad_suffix", "expected a .csv or .parquet"),
    ("no_file", "score_missing.csv"),
])
def test_predict_bad_input_is_one_line_and_writes_nothing(trained, case, needle) -> None:
    _, summary, tokens, tmp, _ = trained
    data, out, run = tmp / "heldout.csv", tmp / f"out_{case}.csv", summary.run_uid
    if case == "missing_column":
        pd.read_csv(data).drop(columns=["sex"]).to_csv(tmp / "nosex.csv", index=False)
        data = tmp / "nosex.csv"
    elif case == "unknown_run":
        run = "0000"
    elif case == "bad_suffix":
        out = tmp / "out.txt"
    else:
        data = tmp / "score_missing.csv"
    res = cli("predict", run, "--data", str(data), "--out", str(out), "--purpose", "readmission-model",
              "--token", tokens["demo"], *_ws(trained))
    assert res.returncode == (3 if case == "unknown_run" else 2), res.stderr  # an unknown run is denied like a forbidden one
    assert needle in error_line(res)
    assert not out.exists() and not list(tmp.glob(".out_*.tmp"))


def test_audit_model_membership_only_spends_nothing(trained) -> None:
    ws, summary, tokens, tmp, _ = trained
    before = len(_budget(trained).runs)
    res = cli("audit-model", summary.run_uid, "--skip-canary", "--json", "--token", tokens["demo"], *_ws(trained))
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)
    mia = rec["membership_inference"]
    assert 0.4 < mia["auc"] < 0.6
    assert set(mia) == {"attack", "auc", "tpr_at_1pct_fpr"}  # aggregate figures only: no member counts
    assert "one_run" not in rec and len(_budget(trained).runs) == before
    shown = cli("audit-model", summary.run_uid, "--skip-canary", "--token", tokens["demo"], *_ws(trained))
    assert shown.returncode == 0 and f"AUC {mia['auc']:.3f}" in shown.stdout and " members vs " not in shown.stdout


def test_audit_model_canary_audit_is_charged_stored_and_reported(trained) -> None:
    from governance.storage.store import Run

    ws, summary, tokens, tmp, _ = trained
    res = cli("audit-model", summary.run_uid, "--canaries", "100", "--json", "--token", tokens["demo"], *_ws(trained))
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)
    one = rec["one_run"]
    assert one["canaries"] == 100 and one["passed"] and one["epsilon_lower_bound"] <= one["claimed_epsilon"]
    assert one["claimed_epsilon"] == pytest.approx(one["audited_model_epsilon"], rel=0.05)
    assert one["budget"]["ledger_epsilon_after"] > one["budget"]["ledger_epsilon_before"]
    b = _budget(trained)
    audit_entry = next(r for r in b.runs if r.run_uid == one["audit_run_uid"])
    assert audit_entry.state == "committed" and audit_entry.epsilon == pytest.approx(one["claimed_epsilon"])
    with ws.session() as s:
        card = s.query(Run).filter(Run.run_uid == summary.run_uid).one().model_card_json
    assert card["audit"]["one_run"]["epsilon_lower_bound"] == one["epsilon_lower_bound"]
    rep = cli("report", "--out", str(tmp / "r.html"), *_ws(trained))
    assert rep.returncode == 0, rep.stderr
    html = (tmp / "r.html").read_text()
    assert "Empirical privacy audits" in html and f"{one['epsilon_lower_bound']:.3f}" in html
    assert cli("audit", "verify", *_ws(trained)).returncode == 0


def test_audit_model_whitebox_is_charged_and_stores_aggregates_only(trained) -> None:
    from governance.evidence.audit import AuditEvent
    from governance.storage.store import Run

    ws, summary, tokens, tmp, _ = trained
    before = {r.run_uid for r in _budget(trained).runs}
    res = cli("audit-model", summary.run_uid, "--whitebox", "--json", "--token", tokens["demo"], *_ws(trained))
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)
    wb = rec["whitebox"]
    assert "one_run" not in rec and set(rec["membership_inference"]) == {"attack", "auc", "tpr_at_1pct_fpr"}
    assert wb["canaries"] == 1000 and wb["correction"] == "bonferroni" and wb["candidates"] == 12
    assert wb["guesses"] == wb["k_pos"] + wb["k_neg"] and 0 <= wb["correct"] <= wb["guesses"]
    assert wb["passed"] and wb["epsilon_lower_bound"] <= wb["claimed_epsilon"]
    assert wb["claimed_epsilon"] == pytest.approx(wb["audited_model_epsilon"], rel=0.05)
    # Aggregates only: every value is a number, a flag or a short string - no per-canary list.
    assert not any(isinstance(v, (list, dict)) for k, v in wb.items() if k != "budget")
    # The audit run's own budget lines: ledger before/after (facts of its commit) and its own epsilon.
    assert wb["budget"]["ledger_epsilon_after"] > wb["budget"]["ledger_epsilon_before"]
    assert wb["budget"]["run_epsilon"] == pytest.approx(wb["claimed_epsilon"])
    new = [r for r in _budget(trained).runs if r.run_uid not in before]
    assert [r.run_uid for r in new] == [wb["audit_run_uid"]] and wb["audit_run_uid"].startswith(summary.run_uid + "-audit-")
    assert new[0].state == "committed" and new[0].epsilon == pytest.approx(wb["claimed_epsilon"])
    with ws.session() as s:
        card = s.query(Run).filter(Run.run_uid == summary.run_uid).one().model_card_json
        ev = (s.query(AuditEvent).filter(AuditEvent.action == "audit_model")
              .order_by(AuditEvent.seq.desc()).first())
    assert card["audit"]["whitebox"] == wb
    assert ev.details["whitebox_epsilon_lower_bound"] == pytest.approx(wb["epsilon_lower_bound"], abs=1e-4)
    both = cli("audit-model", summary.run_uid, "--whitebox", "--skip-canary", "--token", tokens["demo"],
               *_ws(trained))
    assert both.returncode == 2 and "choose one" in error_line(both)
    assert cli("audit", "verify", *_ws(trained)).returncode == 0


def test_audit_model_denied_without_train_grant(trained) -> None:
    _, summary, tokens, _, _ = trained
    res = cli("audit-model", summary.run_uid, "--skip-canary", "--token", tokens["mallory"], *_ws(trained))
    assert res.returncode == 3 and "may not `train`" in error_line(res)


def _budget(trained):
    from governance.storage import catalog

    ws = trained[0]
    with ws.session() as s:
        lineage = catalog.find_dataset(s, "clinic-visits").lineage_id
    return ws.ledger.status(lineage, "patient_id")


def test_unseen_category_share() -> None:
    from governance.run.models import unseen_shares
    from training.features import FeatureEncoder

    df = pd.DataFrame({"c": ["a", "b", "a", "b"], "x": np.arange(4.0), "y": [0, 1, 0, 1]})
    enc = FeatureEncoder.fit(df, "y")
    new = pd.DataFrame({"c": ["a", "zzz", None, "zzz"], "x": np.arange(4.0)})
    assert unseen_shares(enc, new) == {"c": pytest.approx(2 / 3)}


def test_model_card_json(trained) -> None:
    _, summary, _, tmp, _ = trained
    res = cli("model-card", summary.run_uid, *_ws(trained))
    assert res.returncode == 0, res.stderr
    card = json.loads(res.stdout)
    p = card["privacy"]
    assert p["epsilon"] == pytest.approx(summary.epsilon_spent) and p["privacy_unit"] == "patient_id"
    assert p["sampler"] == "poisson" and p["sigma"] > 0 and 0 < p["sample_rate"] <= 1 and p["steps"] > 0
    assert len(card["data"]["dataset_fingerprint"]) == 64 and card["code_version"]
    missing = cli("model-card", "nope", *_ws(trained))
    assert missing.returncode == 2 and "no such run" in error_line(missing)


def test_history_keeps_epochs_and_steps_only(trained) -> None:
    """No training loss, no rows seen, and no held-out curve unless the split is declared public
    (tests/governance/run/test_training.py covers `public_holdout`)."""
    from governance.storage.store import Run

    ws, summary, _, _, spec = trained
    with ws.session() as s:
        hist = s.query(Run).filter(Run.run_uid == summary.run_uid).one().metrics_json["history"]
    assert len(hist) >= spec.training.epochs and all(set(h) == {"epoch", "step"} for h in hist)


def test_print_audit_names_the_chosen_k_and_the_verdict(capsys) -> None:
    from governance.cli.models import print_audit

    wb = {"canaries": 1000, "k_pos": 200, "k_neg": 0, "candidates": 12, "correction": "bonferroni",
          "correct": 199, "guesses": 200, "epsilon_lower_bound": 3.2, "confidence": 0.95, "claimed_epsilon": 0.99,
          "passed": False, "audit_run_uid": "r-audit-abc",
          "budget": {"ledger_epsilon_before": 1.25, "ledger_epsilon_after": 2.5, "run_epsilon": 0.99,
                     "composition_order": 8.0}}
    print_audit("r", {"claimed_epsilon": 0.99, "delta": 1e-5, "whitebox": wb,
                      "membership_inference": {"auc": 0.5, "tpr_at_1pct_fpr": 0.01}})
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "white-box one-run audit" in out and "k+ = 200, k- = 0 of 12 pre-declared" in out
    assert "199/200" in out and "3.200" in out and "EXCEEDS" in out and "r-audit-abc" in out
    assert "ledger ε 1.250 → 2.500" in out and "its own ε 0.990" in out
