"""The one-run audit must pass on a DP run and be able to fail on a memorizing run."""
import numpy as np

from training.canary_audit import run_membership_audit, run_one_run_audit
from training.trainer import TrainConfig, load_model, plan, train_private

from .conftest import DECLARED, synthetic


def test_one_run_audit_dp_run_stays_below_claimed_epsilon():
    df = synthetic(1500, seed=4)
    cfg = TrainConfig(target="y", epochs=3, batch_size=150, lr=0.05, epsilon=1.0, device="cpu", seed=1,
                      hidden=[32], **DECLARED)
    out = run_one_run_audit(df, cfg, m_canaries=200, seed=11)
    assert out["private"] and out["claimed_epsilon"] <= 1.0 + 1e-9
    assert out["epsilon_lower_bound"] <= out["claimed_epsilon"] and out["passed"]


def test_one_run_audit_can_fail_on_memorizing_run():
    df = synthetic(100, seed=5)
    cfg = TrainConfig(target="y", epochs=300, batch_size=50, lr=3e-3, device="cpu", seed=1, hidden=[128, 128],
                      epsilon=1.0, **DECLARED)
    out = run_one_run_audit(df, cfg, m_canaries=100, seed=12, private=False)
    assert out["epsilon_lower_bound"] > 0.5, out  # clearly > 0: the audit can detect leakage


def test_membership_audit_runs_on_trained_model():
    df = synthetic(1200, seed=6)
    tr, te = df.iloc[:600], df.iloc[600:]
    cfg = TrainConfig(target="y", epochs=2, batch_size=100, lr=0.05, epsilon=2.0, device="cpu", hidden=[16],
                      **DECLARED)
    res = train_private(tr, None, cfg, plan(len(tr), cfg))
    mia = run_membership_audit(load_model(res, cfg), res.encoder, tr, te)
    assert 0.3 < mia["auc"] < 0.7
    # Aggregate figures only: no member / non-member counts, rates rounded so no denominator shows.
    assert set(mia) == {"attack", "auc", "tpr_at_1pct_fpr"}
    assert all(round(mia[k], 3) == mia[k] for k in ("auc", "tpr_at_1pct_fpr"))
