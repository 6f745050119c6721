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
    r = per_group_report(y, p, df, ["g"], min_group=1)["g"]
    assert r["demographic_parity_difference"] == 0.5  # a: 3/4 selected, b: 1/4
    assert r["equalized_odds_difference"] == 0.5  # FPR a=0.5, b=0; TPR a=1, b=0.5


def test_groups_below_the_minimum_size_show_no_figure_not_even_their_count():
    rng = np.random.default_rng(1)
    sizes = {"big": 200, "edge": 20, "small": 19, "one": 1}
    df = pd.DataFrame({"g": np.repeat(list(sizes), list(sizes.values()))})
    y = rng.integers(0, 2, len(df))
    p = rng.random(len(df))
    p[df["g"].to_numpy() == "one"] = 1.0  # the lone person: selected, an outlier for parity
    r = per_group_report(y, p, df, ["g"])["g"]  # default minimum: 20
    assert r["min_group_size"] == 20
    for name in ("small", "one"):
        assert set(r["groups"][name].values()) == {"< 20"}  # n, rates, confusion matrix: all hidden
    assert r["groups"]["edge"]["n"] == 20 and r["groups"]["big"]["n"] == 200
    shown = [r["groups"][k]["selection_rate"] for k in ("big", "edge")]
    assert r["demographic_parity_difference"] == max(shown) - min(shown)  # suppressed groups take no part
    r5 = per_group_report(y, p, df, ["g"], min_group=250)["g"]
    assert all(set(g.values()) == {"< 250"} for g in r5["groups"].values())
    assert r5["demographic_parity_difference"] == 0.0


def test_undeclared_group_values_are_pooled_not_named():
    df = pd.DataFrame({"race": ["white"] * 30 + ["black"] * 30 + ["Atlantean"] * 25 + [None] * 5})
    y = np.arange(len(df)) % 2
    p = np.full(len(df), 0.7)
    groups = per_group_report(y, p, df, ["race"], declared={"race": ["white", "black", "asian"]})["race"]["groups"]
    assert "Atlantean" not in groups and groups["(undeclared values)"]["n"] == 25
    assert groups["white"]["n"] == 30 and groups["<missing>"]["n"] == "< 20" and "asian" not in groups
