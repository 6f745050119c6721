"""Classification metrics and per-group fairness, numpy only.

Why no scikit-learn: it is a dev dependency; the runtime path needs a handful
of formulas. ROC AUC is the rank-based Mann-Whitney statistic with average
ranks for ties, which equals the area under the ROC curve.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Rank-based AUC (ties get average ranks); None if only one class is present."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    s_sorted = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    _, first, counts = np.unique(s_sorted, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # 1-based average rank of each tie block
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate(y: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Accuracy, precision, recall, F1, ROC AUC, confusion matrix, rates."""
    y = np.asarray(y).astype(np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    pred = (prob >= threshold).astype(np.int64)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    n = len(y)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(y, prob),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "selection_rate": (tp + fp) / n if n else 0.0,
        "tpr": recall,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
        "positive_rate": float(y.mean()) if n else 0.0,
    }


MIN_GROUP_SIZE = 20
UNDECLARED_GROUP = "(undeclared values)"


def suppressed(min_group: int) -> str:
    """How a figure of a group smaller than `min_group` is shown: the words, never the number."""
    return f"< {int(min_group)}"


def per_group_report(y: np.ndarray, prob: np.ndarray, df: pd.DataFrame, sensitive_columns: list[str],
                     threshold: float = 0.5, min_group: int = MIN_GROUP_SIZE,
                     declared: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Metrics per value of each sensitive column, plus demographic-parity and
    equalized-odds differences (max - min across groups of selection rate, and
    max over {TPR, FPR} of the max - min gap).

    Why suppression: held-out rows are private too, and a group of one is a
    person - its "accuracy" is whether the model got that person right. Every
    figure of a group with fewer than `min_group` rows, its count included, is
    the string "< min_group", and such groups take no part in the differences.
    With `declared` (column -> declared values), values outside the declared
    set are pooled under one label instead of being named.
    """
    out: dict[str, Any] = {}
    y = np.asarray(y)
    prob = np.asarray(prob)
    hidden = suppressed(min_group)
    for col in sensitive_columns:
        if col not in df.columns:
            continue
        raw = df[col]
        values = raw.astype(str).where(raw.notna(), "<missing>").to_numpy(dtype=object)
        if declared is not None:
            allowed = set(declared.get(col, []))
            from training.features import category_keys

            keys = category_keys(raw).to_numpy(dtype=object)
            values = np.where(raw.notna().to_numpy() & ~np.isin(keys, list(allowed)), UNDECLARED_GROUP,
                              np.where(raw.notna().to_numpy(), keys, "<missing>"))
        groups: dict[str, Any] = {}
        for v in sorted(set(values.tolist())):
            m = values == v
            if m.sum() < min_group:
                groups[v] = {k: hidden for k in _METRIC_KEYS}
                continue
            groups[v] = evaluate(y[m], prob[m], threshold)
        shown = [g for g in groups.values() if g["n"] != hidden]
        sel = [g["selection_rate"] for g in shown]
        tpr = [g["tpr"] for g in shown if g["confusion_matrix"]["tp"] + g["confusion_matrix"]["fn"]]
        fpr = [g["fpr"] for g in shown if g["confusion_matrix"]["fp"] + g["confusion_matrix"]["tn"]]
        gap = lambda xs: float(max(xs) - min(xs)) if xs else 0.0  # noqa: E731
        out[col] = {
            "groups": groups,
            "min_group_size": int(min_group),
            "demographic_parity_difference": gap(sel),
            "equalized_odds_difference": max(gap(tpr), gap(fpr)),
        }
    return out


_METRIC_KEYS = tuple(evaluate(np.array([0, 1]), np.array([0.2, 0.8])).keys())
