import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, roc_auc_score

from training.evaluation import evaluate, per_group_report, roc_auc


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.round(np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1), 2)  # many ties
    assert abs(roc_auc(y, p) - roc_auc_score(y, p)) < 1e-12
    m = evaluate(y, p)
    assert abs(m["f1"] - f1_score(y, p >= 0.5)) < 1e-12
    cm = m["confusion_matrix"]
    assert cm["tp"] + cm["tn"] + cm["fp"] + cm["fn"] == 500


def test_fairness_differences():
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    p = np.array([1, 1, 1, 0, 0, 0, 1, 0], dtype=float)
    df = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 4})
    r = per_group_report(y, p, df, ["g"])["g"]
    assert r["demographic_parity_difference"] == 0.5  # a: 3/4 selected, b: 1/4
    assert r["equalized_odds_difference"] == 0.5  # FPR a=0.5, b=0; TPR a=1, b=0.5
