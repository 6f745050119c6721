"""UCI Adult accuracy under DP with privgov's trainer.

Why: the guide's reference (Opacus MLP(64), eps=1 -> 0.851) is the bar. The
gain comes from features, not model size: public, fixed bins (chosen from the
attribute's meaning, not from the data) turn numerics into categoricals
(a GAM-like logistic model), capital gain/loss are log-scaled, and large
Poisson batches with many epochs keep the noise per update small.

Declarations, not data statistics: the encoder is built the way a governed
run builds it (`encoder="declared"`) - vocabularies are the value sets of
examples/adult/suite.json (copied from the public adult.names) and the bin
indices, numerics are scaled by public declared ranges, and the sample rate
uses adult.names' documented training size, not a count of the rows.

Hyper-parameters: chosen with `--tune`, which splits adult.data 80/20
(seeded) and picks the config with the best validation accuracy at eps=1;
adult.test is only read for the final numbers. Note that tuning on adult.data
is itself not differentially private (standard benchmark practice, stated in
the JSON).

Usage: python benchmarks/adult_accuracy.py [--adult-dir DIR] [--epsilons 0.25,1] [--seeds 0,1,2] [--tune]
Writes benchmarks/results/adult_accuracy.json. Never commit the Adult files.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import _meta  # noqa: E402  (benchmarks/ is on sys.path: a site-packages 'benchmarks' may shadow it)

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income"]
# Public, data-independent bin edges (from the attributes' meaning).
BINS = {
    "age": [0, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 200],
    "hours-per-week": [0, 20, 30, 35, 39, 40, 45, 50, 55, 60, 200],
    "capital-gain": [-1, 0, 2000, 4000, 5000, 7000, 10000, 20000, 1e9],
    "capital-loss": [-1, 0, 1500, 1800, 2000, 2500, 1e9],
}
CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
               "native-country", "education-num_cat"] + [f"{c}_bin" for c in BINS]
NUMERIC = ["age", "education-num", "hours-per-week", "log_gain", "log_loss"]
# Public declared ranges of the numerics (examples/adult/suite.json; capital amounts on
# the log scale: 99999 is the census top-code, 5000 the suite's capital-loss bound).
RANGES = {"age": [16.0, 100.0], "education-num": [1.0, 16.0], "hours-per-week": [1.0, 99.0],
          "log_gain": [0.0, float(np.log1p(99999))], "log_loss": [0.0, float(np.log1p(5000))]}
TRAIN_UNITS = 32561  # adult.data's size as documented in adult.names (public), not counted here
SUITE = ROOT / "examples" / "adult" / "suite.json"


def declared_vocabularies() -> dict[str, list[str]]:
    """Value sets of the suite (named as this script names columns) plus the public bin and level labels."""
    import json

    vocab: dict[str, list[str]] = {}
    for exp in json.loads(SUITE.read_text())["expectations"]:
        if exp["type"] == "expect_column_values_to_be_in_set":
            vocab[exp["kwargs"]["column"].replace("_", "-")] = [str(v) for v in exp["kwargs"]["value_set"]]
    vocab["education-num_cat"] = [str(i) for i in range(1, 17)]
    for c, edges in BINS.items():
        vocab[f"{c}_bin"] = [str(i) for i in range(len(edges) - 1)]
    missing = [c for c in CATEGORICAL if c not in vocab]
    if missing:
        raise SystemExit(f"error: {SUITE} declares no value set for {missing}")
    return vocab


def read_adult(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=COLUMNS, sep=",", skipinitialspace=True, na_values=["?"],
                     comment="|")
    df = df.dropna(subset=["income"])
    df["income"] = df["income"].astype(str).str.strip().str.rstrip(".")
    return df.drop(columns=["fnlwgt"])


def engineer(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c, edges in BINS.items():
        out[f"{c}_bin"] = pd.cut(out[c], edges, labels=False).astype("Int64").astype(str)
    out["education-num_cat"] = out["education-num"].astype(str)
    out["log_gain"] = np.log1p(out["capital-gain"])
    out["log_loss"] = np.log1p(out["capital-loss"])
    return out


def config(eps: float, seed: int, **kw: Any):
    from training.trainer import TrainConfig

    base = dict(target="income", features=NUMERIC + CATEGORICAL, categorical=CATEGORICAL, model="logreg",
                hidden=[], epsilon=eps, delta=1e-5, epochs=40, batch_size=4096, lr=0.05, optimizer="adam",
                max_grad_norm=1.0, seed=seed, positive_label=">50K", sensitive_columns=["sex", "race"],
                encoder="declared", declared_vocabularies=declared_vocabularies(), declared_ranges=RANGES,
                max_units=TRAIN_UNITS)
    base.update(kw)
    return TrainConfig(**base)


def run_one(train: pd.DataFrame, test: pd.DataFrame, cfg) -> dict[str, Any]:
    from training.trainer import plan, train_private

    p = plan(cfg.max_units or len(train), cfg)
    t = time.time()
    res = train_private(train, test, cfg, p)
    return {"test_accuracy": res.metrics["accuracy"], "roc_auc": res.metrics["roc_auc"],
            "epsilon_spent": res.epsilon_spent, "sigma": p.sigma, "sample_rate": p.sample_rate, "steps": p.steps,
            "seconds": round(time.time() - t, 2), "device": res.device}


GRID = [
    dict(model="logreg", lr=0.05, epochs=40, batch_size=4096, max_grad_norm=1.0),
    dict(model="logreg", lr=0.1, epochs=60, batch_size=8192, max_grad_norm=1.0),
    dict(model="logreg", lr=0.02, epochs=30, batch_size=2048, max_grad_norm=0.5),
    dict(model="mlp", hidden=[64], lr=0.01, epochs=40, batch_size=4096, max_grad_norm=1.0),
    dict(model="mlp", hidden=[64], lr=0.02, epochs=60, batch_size=8192, max_grad_norm=1.0),
    dict(model="mlp", hidden=[64], lr=0.005, epochs=30, batch_size=2048, max_grad_norm=1.0),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("PRIVGOV_ADULT_DIR") or str(ROOT / ".." / "shared" / "data" / "adult")
    ap.add_argument("--adult-dir", default=default_dir)
    ap.add_argument("--epsilons", default="0.25,1")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--tune", action="store_true", help="pick hyper-parameters on an 80/20 split of adult.data")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    d = Path(args.adult_dir)
    if not (d / "adult.data").exists():
        raise SystemExit(f"error: {d / 'adult.data'} not found; pass --adult-dir or set PRIVGOV_ADULT_DIR")
    import torch

    torch.set_num_threads(min(8, os.cpu_count() or 1))
    train = engineer(read_adult(d / "adult.data"))
    test = engineer(read_adult(d / "adult.test"))
    chosen: dict[str, Any] = dict(GRID[0])
    tuning = []
    if args.tune:
        rng = np.random.default_rng(1234)
        mask = rng.random(len(train)) < 0.8
        tr, va = train[mask].reset_index(drop=True), train[~mask].reset_index(drop=True)
        best = -1.0
        for g in GRID:
            acc = float(np.mean([run_one(tr, va, config(1.0, s, device=args.device, max_units=int(0.8 * TRAIN_UNITS), **g))
                                 ["test_accuracy"] for s in (100, 101)]))
            tuning.append({**g, "val_accuracy": acc})
            print(f"tune {g} -> val {acc:.4f}", flush=True)
            if acc > best:
                best, chosen = acc, dict(g)
    results = []
    for eps in [float(e) for e in args.epsilons.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            cfg = config(eps, seed, device=args.device, **chosen)
            r = run_one(train, test, cfg)
            r.update(epsilon=eps, delta=cfg.delta, seed=seed, model=cfg.model, hidden=list(cfg.hidden),
                     epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, max_grad_norm=cfg.max_grad_norm,
                     optimizer=cfg.optimizer)
            results.append(r)
            print(f"eps={eps} seed={seed} acc={r['test_accuracy']:.4f} ({r['seconds']}s)", flush=True)
    summary = {}
    for eps in sorted({r["epsilon"] for r in results}):
        accs = [r["test_accuracy"] for r in results if r["epsilon"] == eps]
        summary[str(eps)] = {"mean_test_accuracy": float(np.mean(accs)), "std": float(np.std(accs)), "n": len(accs)}
    payload = {
        "benchmark": "adult_accuracy", "machine": _meta.machine(),
        "versions": _meta.versions("torch", "opacus", "numpy", "pandas"),
        "settings": {"train": "adult.data (32,561 rows)", "test": "adult.test (16,281 rows)", "fnlwgt": "dropped",
                     "features": "public fixed bins for age/hours/capital-gain/loss as categoricals, "
                                 "education-num as categorical, log1p capital gain/loss, numerics scaled by "
                                 "declared ranges",
                     "encoder": "declared: vocabularies from examples/adult/suite.json (adult.names) and the bin "
                                "labels, numeric centre/scale from declared ranges (clipped); nothing fitted on "
                                "the data",
                     "sample_rate_units": f"{TRAIN_UNITS} (adult.names' documented training size)",
                     "hyperparameter_selection": ("80/20 split of adult.data, best mean validation accuracy at "
                                                  "eps=1 over 2 seeds; adult.test unseen (selection itself not DP)")
                     if args.tune else ("fixed: the first grid entry, which the last --tune run (80/20 split of "
                                        "adult.data, eps=1, 2 seeds; see this file's git history) selected; "
                                        "tuning not re-run here"),
                     "chosen": chosen, "tuning": tuning, "accountant": "PRV", "sampler": "poisson"},
        "summary": summary, "results": results,
    }
    path = _meta.write_results("adult_accuracy.json", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
