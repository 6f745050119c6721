"""Model card: what was trained on what, with which guarantee, and how well.

Why a plain dict: the pipeline stores it (encrypted) beside the model and the
report renders it; it must be JSON-serializable and carry no data values.

What it may say (GUIDE 3, "could one person's presence change this number?"):
declared quantities (the units bound behind q, the declared vocabularies), the
DP outputs, and held-out metrics with small groups suppressed. Not: a hash of
the plaintext (anyone holding a candidate dataset could confirm it - the card
carries a keyed fingerprint instead), counts of rows, batches or members.
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


# Held-out counts stay off the card: the split's size is a fixed share of the
# data's, so it would publish n. Rates are kept.
_COUNTS = ("n", "confusion_matrix")


def feature_statistics(encoder: Any) -> str:
    """The card's words for where the encoder's vocabularies and scales came from."""
    if encoder is not None and getattr(encoder, "source", "fit_on_data") == "declared":
        return ("declared: vocabularies and numeric ranges come from the quality suite's public declarations; "
                "nothing in the encoder was computed from the data")
    return ("fitted on the train split without noise (encoder: fit_on_data): the means, standard deviations and "
            "vocabularies in the model are NOT covered by epsilon")


# Hyper-parameters that exist only for some model types (a logistic regression has no hidden layers).
TYPE_ONLY_FIELDS: dict[str, tuple[str, ...]] = {"hidden": ("mlp",)}


def model_section(cfg: Any) -> dict[str, Any]:
    """The card's `model` lines: the trained type's own hyper-parameters, not another type's defaults."""
    section = {"name": cfg.model, "hidden": list(cfg.hidden), "optimizer": cfg.optimizer, "lr": cfg.lr,
               "epochs": cfg.epochs, "expected_batch_size": cfg.batch_size, "amp_bf16": cfg.amp}
    return {k: v for k, v in section.items() if k not in TYPE_ONLY_FIELDS or cfg.model in TYPE_ONLY_FIELDS[k]}


def build_model_card(cfg: Any, plan: Any, result: Any, *, dataset_fingerprint: str | None = None,
                     audit: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the card from the config, the privacy plan and the result."""
    poisson = cfg.sampler == "poisson"
    declared_n = getattr(cfg, "max_units", None) is not None
    card = {
        "model": model_section(cfg),
        "data": {"dataset_fingerprint": dataset_fingerprint,
                 "dataset_fingerprint_kind": "HMAC-SHA256 of the version under a workspace key (not a hash "
                                             "of the plaintext)" if dataset_fingerprint else None,
                 "target": cfg.target,
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
            "units_for_sample_rate": plan.n_units,
            "units_source": ("declared bound (max_units): sample_rate = batch_size / declared units; the data's "
                             "true size only changes the expected batch" if declared_n else
                             "count given by the caller (not a governed run)"),
            "epsilon_covers": "the training frame as given to the trainer",
            "clip_norm": cfg.max_grad_norm,
            "clipping": cfg.clipping,
            "sampler": cfg.sampler,
            "poisson_accounted": poisson,
            "warning": None if poisson else "shuffle_unsafe sampler: epsilon is NOT a valid Poisson-accounted guarantee",
            "feature_statistics": feature_statistics(result.encoder),
        },
        "model_selection": "no early stopping or checkpoint selection on private validation data; final iterate",
        "metrics": {k: v for k, v in (result.metrics or {}).items() if k not in _COUNTS},
        "fairness": {c: {k: v for k, v in g.items() if k != "groups"} for c, g in (result.per_group or {}).items()},
        "fairness_groups": "held-out split; groups below min_group_size are shown as '< N' and left out of the "
                           "differences",
        "audit": audit or {},
        "training": {"device": result.device, "seed": cfg.seed, "history_epochs": len(result.history)},
        "code_version": code_version(),
    }
    if extra:
        card["training"].update(extra)
    return _clean(card)


def budget_section(*, epsilon_before: float, epsilon_after: float, run_epsilon: float, run_delta: float,
                   order: float, delta: float, composition: str) -> dict[str, Any]:
    """The card's budget lines: the dataset's ledger before and after this run, and the run's own (ε, δ).

    Why three figures and no difference: the ledger reports what its privacy
    filter has admitted, converted to ε at the order α fixed with the cap and
    the filter's δ; that conversion adds a term once, so `after - before` is
    neither the run's ε nor a "saving" against it. Each figure is shown as
    what it is, recorded when the run committed (ledger facts, not recomputed)."""
    return _clean({
        "ledger_epsilon_before": float(epsilon_before),
        "ledger_epsilon_after": float(epsilon_after),
        "run_epsilon": float(run_epsilon),
        "run_delta": float(run_delta),
        "composition_order": float(order),
        "ledger_delta": float(delta),
        "composition": ("Renyi filter: RDP at the fixed order α summed over the dataset's runs, converted to ε at "
                        "the ledger's δ" if composition == "renyi-filter" else
                        "basic composition share: the dataset's basic-composition runs' ε added"),
        "reading": "ledger ε before and after are the dataset's committed spend as the filter reports it; the run's "
                   "ε is this run alone, from its accountant; the cap is the guarantee for all runs together",
    })


def plan_dict(plan: Any) -> dict[str, Any]:
    return _clean(asdict(plan))
