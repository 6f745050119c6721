"""Empirical privacy audits of trained models.

Why: the accountant proves epsilon for the algorithm as specified; an audit
attacks the implementation. `run_membership_audit` is the descriptive
loss-threshold attack (train vs held-out). `run_one_run_audit` is the
Steinke-Nasr-Jagielski one-run audit: m canaries (random features, random
labels - points the model can only fit by memorizing) are each inserted with
probability 1/2 *before* training, the model is trained once with the same
DP settings, canaries are scored by minus their loss, and
`privacy.empirical.one_run_audit` turns the guesses into a lower bound on
epsilon at 95% confidence. A bound above the claimed epsilon means a bug.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from privacy import empirical
from privacy.errors import InputError


def per_row_loss(model: Any, encoder: Any, df: pd.DataFrame, device: Any = "cpu") -> np.ndarray:
    """Cross-entropy of each row under its own label (final model only)."""
    import torch
    from torch.nn import functional as F

    from training.trainer import _tensors

    data, y = _tensors(encoder, df, device)
    model = model.to(device).eval()
    with torch.no_grad():
        loss = F.cross_entropy(model(*data).float(), y, reduction="none")
    model.train()
    return loss.cpu().numpy().astype(np.float64)


MIA_DIGITS = 3


def run_membership_audit(model: Any, encoder: Any, members: pd.DataFrame, nonmembers: pd.DataFrame,
                         device: Any = "cpu") -> dict[str, Any]:
    """Loss-threshold MIA: score = -loss; members = training rows, nonmembers = held out.

    Aggregate figures only - AUC and TPR at 1% FPR, rounded to 3 decimals. Why:
    the record goes on the model card and into the report; member and
    non-member counts are sizes of the private splits, and the unrounded rates
    are fractions whose denominators give those sizes away."""
    res = empirical.membership_inference(-per_row_loss(model, encoder, members, device),
                                         -per_row_loss(model, encoder, nonmembers, device))
    return {"attack": "loss-threshold", "auc": round(float(res.auc), MIA_DIGITS),
            "tpr_at_1pct_fpr": round(float(res.tpr_at_1pct_fpr), MIA_DIGITS)}


def make_canaries(train_df: pd.DataFrame, target: str, m: int, rng: np.random.Generator,
                  labels: list[Any] | None = None, unit_column: str | None = None) -> pd.DataFrame:
    """m records with independently random feature values and random labels."""
    cols = {}
    for c in train_df.columns:
        if c == target:
            continue
        col = train_df[c]
        if unit_column is not None and c == unit_column:
            cols[c] = [f"__canary_{i}" for i in range(m)]
        elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            lo, hi = float(col.min()), float(col.max())
            vals = rng.uniform(lo, hi, size=m)
            cols[c] = np.round(vals) if pd.api.types.is_integer_dtype(col) else vals
        else:
            vals = col.dropna().unique()
            cols[c] = rng.choice(vals, size=m) if len(vals) else [None] * m
    out = pd.DataFrame({**cols, target: train_df[target].iloc[0]})[list(train_df.columns)]
    out[target] = _flipped_labels(train_df, out, target, unit_column)
    for c in train_df.columns:
        if c != unit_column and pd.api.types.is_integer_dtype(train_df[c]):
            out[c] = out[c].astype(train_df[c].dtype)
    return out


def _flipped_labels(train_df: pd.DataFrame, canaries: pd.DataFrame, target: str,
                    unit_column: str | None, k: int = 15, max_reference: int = 20000) -> np.ndarray:
    """Label each canary against its neighbourhood: the minority label of its k
    nearest real records. A model that has not seen the canary gets it wrong
    (high loss); one that memorized it does not - the signal the audit needs.

    Distance = squared distance of standardized numerics + 2 per categorical
    mismatch (the one-hot distance, without building one-hot columns, which
    for high-cardinality fields such as ZIP codes would be huge). At most
    `max_reference` real records are searched.
    """
    from training.features import FeatureEncoder

    exclude = (unit_column,) if unit_column else ()
    ref = train_df
    if len(ref) > max_reference:
        ref = ref.sample(n=max_reference, random_state=0)
    enc = FeatureEncoder.fit(ref, target, categorical_encoding="embedding", exclude=exclude)
    xt, ct, yt = enc.transform(ref)
    xc, cc, _ = enc.transform(canaries)
    labels = ref[target].to_numpy()
    pos_label = next(v for v, f in zip(labels, yt) if f == 1) if yt.any() else labels[0]
    neg_label = next(v for v, f in zip(labels, yt) if f == 0) if (yt == 0).any() else labels[0]
    out = []
    for num, cat in zip(xc, cc):
        d = ((xt - num) ** 2).sum(1) + 2.0 * (ct != cat).sum(1)
        nn_idx = np.argpartition(d, min(k, len(d) - 1))[:k]
        out.append(neg_label if yt[nn_idx].mean() >= 0.5 else pos_label)
    return np.asarray(out, dtype=object)


def run_one_run_audit(train_df: pd.DataFrame, cfg: Any, m_canaries: int = 200, *, seed: int = 0,
                      private: bool = True, confidence: float = 0.95, device: Any = None,
                      before_training: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """One-run audit with the SAME DP settings as `cfg` (or non-private, to show the audit can fail).

    The audit trains once more on the real rows, so it costs privacy budget:
    `before_training(plan)` is called with the audit run's privacy plan before
    any training (a governed caller reserves budget there; raising aborts).
    Returns the lower bound, the claimed epsilon and `passed` = bound <= claimed.
    """
    from training.trainer import count_units, load_model, plan, resolve_device, train_nonprivate, train_private

    if m_canaries < 10:
        raise InputError(f"m_canaries: expected at least 10 canaries, got {m_canaries}")
    rng = np.random.default_rng(seed)
    canaries = make_canaries(train_df, cfg.target, m_canaries, rng, unit_column=cfg.unit_column)
    included = rng.random(m_canaries) < 0.5  # fixed before training
    audit_df = pd.concat([train_df, canaries[included]], ignore_index=True)
    if private:
        n_units, max_group = count_units(audit_df, cfg)
        pplan = plan(n_units, cfg, max_group_size=max_group)
        if before_training is not None:
            before_training(pplan)
        result = train_private(audit_df, None, cfg, pplan)
        claimed = result.epsilon_spent
    else:
        result = train_nonprivate(audit_df, None, cfg)
        claimed = float("inf")
    model = load_model(result, cfg)
    dev = resolve_device(cfg.device) if device is None else device
    scores = -per_row_loss(model, result.encoder, canaries, dev)
    audit = empirical.one_run_audit(scores, included, delta=cfg.delta, confidence=confidence)
    return {
        "method": "one-run (Steinke, Nasr & Jagielski 2023)",
        "rdp_orders": list(result.orders), "rdp": list(result.rdp),
        "canaries": m_canaries,
        "included": int(included.sum()),
        "epsilon_lower_bound": audit.epsilon_lower,
        "claimed_epsilon": claimed,
        "confidence": confidence,
        "k_pos": audit.k_pos, "k_neg": audit.k_neg,  # chosen by the Bonferroni-corrected search
        "guesses": audit.guesses,
        "correct": audit.correct,
        "candidates": audit.candidates, "correction": audit.correction,
        "passed": bool(audit.epsilon_lower <= claimed),
        "private": private,
    }


__all__ = ["make_canaries", "per_row_loss", "run_membership_audit", "run_one_run_audit"]
