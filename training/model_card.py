"""Model card: what was trained on what, with which guarantee, and how well.

Why a plain dict: the pipeline stores it (encrypted) beside the model and the
report renders it; it must be JSON-serializable and carry no data values.
"""
from __future__ import annotations

import math
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any


def code_version() -> str:
    """Git commit of the training code, or 'unknown' outside a checkout."""
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def build_model_card(cfg: Any, plan: Any, result: Any, *, dataset_hash: str | None = None,
                     audit: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the card from the config, the privacy plan and the result."""
    poisson = cfg.sampler == "poisson"
    card = {
        "model": {"name": cfg.model, "hidden": list(cfg.hidden), "optimizer": cfg.optimizer, "lr": cfg.lr,
                  "epochs": cfg.epochs, "expected_batch_size": cfg.batch_size, "amp_bf16": cfg.amp},
        "data": {"dataset_version_hash": dataset_hash, "target": cfg.target,
                 "features": result.encoder.to_dict() if result.encoder is not None else None,
                 "sensitive_columns": list(cfg.sensitive_columns)},
        "privacy": {
            "differentially_private": True,
            "privacy_unit": cfg.unit_column or "row",
            "bounding": cfg.bounding if cfg.unit_column else "none (one row per unit)",
            "group_size": getattr(plan, "group_size", 1),
            "ledger_composition": ("RDP curve, composed across runs as a privacy filter"
                                   if getattr(plan, "group_size", 1) == 1 else
                                   "basic composition of the per-unit (epsilon, delta): the RDP curve is per row"),
            "epsilon": result.epsilon_spent,
            "delta": cfg.delta,
            "accountant": "PRV (Opacus) for calibration and report; RDP curve stored for composition",
            "sigma": plan.sigma,
            "sample_rate": plan.sample_rate,
            "steps": plan.steps,
            "clip_norm": cfg.max_grad_norm,
            "clipping": cfg.clipping,
            "sampler": cfg.sampler,
            "poisson_accounted": poisson,
            "warning": None if poisson else "shuffle_unsafe sampler: epsilon is NOT a valid Poisson-accounted guarantee",
            "feature_statistics": "encoder statistics (means/stds, vocabularies) fitted on the train split without noise",
        },
        "model_selection": "no early stopping or checkpoint selection on private validation data; final iterate",
        "metrics": result.metrics,
        "fairness": {c: {k: v for k, v in g.items() if k != "groups"} for c, g in (result.per_group or {}).items()},
        "audit": audit or {},
        "training": {"device": result.device, "seed": cfg.seed, "history_epochs": len(result.history)},
        "code_version": code_version(),
    }
    if extra:
        card["training"].update(extra)
    return _clean(card)


def plan_dict(plan: Any) -> dict[str, Any]:
    return _clean(asdict(plan))
