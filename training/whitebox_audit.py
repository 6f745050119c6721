"""White-box one-run audit of DP-SGD with gradient (Dirac) canaries.

Why: the black-box canary audit (`training.canary_audit`) scores canary
*records* by their loss on the final model, which has little power (issue 11:
eps-hat 0.77 for a model that memorises). Steinke, Nasr & Jagielski, "Privacy
Auditing with One (1) Training Run" (NeurIPS 2023), sec. 7, audit DP-SGD in
the white-box setting instead: m canaries, each a synthetic gradient
C * e_j at its own coordinate j of the parameters (C = the clipping norm, so
a canary has exactly the sensitivity of one clipped record), each included
independently with probability 1/2; the auditor sees every iterate and scores
canary i by the sum over steps of the update at j_i. Under (eps, delta)-DP
of each step's release the number of correct guesses obeys their Theorem 5.2,
and `privacy.empirical.one_run_audit` turns it into a lower bound.

What is audited: the real trainer. `run_whitebox_audit` builds the run with
`training.trainer.start_run` (Poisson sampler, book-keeping clipping, the
per-run CSPRNG noise) and installs a `CanaryInjector` as the clipper's
`sum_hook` - the one default-off hook in `ClippedSumBase.finalize` - which
adds C at j_i to the clipped sum whenever canary i is Poisson-sampled (rate
q, like a record; its coins come from a generator the auditor never reads,
so the audit keeps the amplification by sampling that the accountant
assumes). Noise, scaling and the optimizer step are the trainer's own.

What the auditor observes: the parameters at the canary coordinates before
training and after every step. The audit run uses SGD (momentum and weight
decay as configured, no Nesterov), whose iterates determine each step's
privatized gradient exactly, so the observed update of step t is converted
back to the released sum S_t + canaries + noise (in units of clipped
gradients). The optimizer is post-processing of those releases and changes
nothing in the privacy claim; the sampling, clipping, hook and noise paths
are the ones every governed run trains with.

Attacker who regenerates the noise: `noise_attacker(run)` (tests, benchmark)
gives a function called once per step that returns what the attacker believes
the step's noise vector was; it is subtracted before scoring. With the pre-issue-11 seeded
generator (`training.insecure_random`, tests only) the guess is exact and the
audit sees the clipped sums bare; with the per-run CSPRNG it is a fresh
Gaussian that only adds variance.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from privacy import empirical
from privacy.errors import InputError

METHOD = ("white-box one-run (Steinke, Nasr & Jagielski 2023): Dirac gradient canaries C*e_j, "
          "Poisson-sampled like records, scored on all iterates")
NoiseAttacker = Callable[[Any], Callable[[], Any]]


class CanaryInjector:
    """`ClippedSumBase.sum_hook`: adds C * e_{j_i} for each included canary sampled this step.

    Coins for all m canaries are drawn every step (included or not), so the
    generator's stream does not depend on which canaries are included.
    """

    def __init__(self, params: list[Any], coords: np.ndarray, included: np.ndarray, max_grad_norm: float,
                 sample_rate: float, rng: Any) -> None:
        import torch

        self.params, self.rng, self.q = params, rng, float(sample_rate)
        self.value = float(max_grad_norm)
        self.m = int(len(coords))
        device = params[0].device
        self.included = torch.as_tensor(np.asarray(included, dtype=bool), device=device)
        sizes = np.array([p.numel() for p in params])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        owner = np.searchsorted(starts, coords, side="right") - 1
        self.slots = [(k, torch.as_tensor(np.flatnonzero(owner == k), device=device),
                       torch.as_tensor(coords[owner == k] - starts[k], device=device))
                      for k in range(len(params)) if (owner == k).any()]
        self.steps = 0

    def __call__(self, sums: dict[Any, Any]) -> None:
        import torch

        active = self.rng.bernoulli_mask(self.m, self.q).to(self.included.device) & self.included
        self.steps += 1
        for k, canary_ids, local in self.slots:
            hit = active[canary_ids]
            if not bool(hit.any()):
                continue
            p = self.params[k]
            s = sums.get(p)
            if s is None:
                s = torch.zeros(p.shape, device=p.device)
                sums[p] = s
            s.view(-1).index_add_(0, local[hit], torch.full((int(hit.sum()),), self.value, device=s.device,
                                                            dtype=s.dtype))


class _Observer:
    """The parameters at the canary coordinates (float64 copies) before training and after each step."""

    def __init__(self, params: list[Any], coords: np.ndarray) -> None:
        import torch

        sizes = np.array([p.numel() for p in params])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        owner = np.searchsorted(starts, coords, side="right") - 1
        self.order = np.concatenate([np.flatnonzero(owner == k) for k in range(len(params))])
        self.parts = [(params[k], torch.as_tensor(coords[owner == k] - starts[k]))
                      for k in range(len(params)) if (owner == k).any()]
        self.inverse = np.argsort(self.order)
        self.iterates: list[np.ndarray] = [self.read()]

    def read(self) -> np.ndarray:
        vals = [p.detach().reshape(-1)[idx.to(p.device)].double().cpu().numpy() for p, idx in self.parts]
        return np.concatenate(vals)[self.inverse]

    def record(self) -> None:
        self.iterates.append(self.read())


def privatized_gradients(iterates: np.ndarray, optimizer_group: dict[str, Any]) -> np.ndarray:
    """The gradients SGD was given, recovered from consecutive iterates (T+1, m) -> (T, m).

    torch.optim.SGD: d_t = g_t + wd * theta_{t-1}; b_1 = d_1, b_t = mu b_{t-1} + (1 - damp) d_t;
    theta_t = theta_{t-1} - lr * b_t. Each step is inverted exactly (up to float rounding).
    """
    lr, mu = float(optimizer_group["lr"]), float(optimizer_group.get("momentum", 0.0))
    damp, wd = float(optimizer_group.get("dampening", 0.0)), float(optimizer_group.get("weight_decay", 0.0))
    if optimizer_group.get("nesterov") or optimizer_group.get("maximize"):
        raise InputError("optimizer: the white-box audit inverts plain SGD updates; use nesterov=False, maximize=False")
    theta = np.asarray(iterates, dtype=np.float64)
    b = (theta[:-1] - theta[1:]) / lr
    d = b.copy()
    if mu != 0.0:
        d[1:] = (b[1:] - mu * b[:-1]) / (1.0 - damp)
    return d - wd * theta[:-1]


def _audit_config(cfg: Any) -> Any:
    """The run's DP settings with SGD (its iterates are invertible) and no CUDA graph (the hook draws per step)."""
    return replace(cfg, optimizer="sgd", cuda_graphs=False)


def run_whitebox_audit(train_df: pd.DataFrame, cfg: Any, m_canaries: int = 1000, *, seed: int | None = None,
                       confidence: float = 0.95, noise_multiplier: float | None = None,
                       before_training: Callable[[Any], None] | None = None,
                       start: Callable[..., Any] | None = None, canary_rng: Any = None,
                       noise_attacker: NoiseAttacker | None = None) -> dict[str, Any]:
    """Train once with `cfg`'s DP settings plus m gradient canaries; return the audit (aggregates only).

    `before_training(plan)` runs before any training (a governed caller reserves
    budget there; raising aborts). `noise_multiplier` overrides the plan's sigma
    (0: clipping without noise, which claims nothing - to show the audit's power).
    `start(train_df, cfg, plan)` builds the run (default: the trainer's
    `start_run`, per-run CSPRNG); `canary_rng` draws the canaries' Poisson coins
    (default: a fresh `SecureRandom`); `noise_attacker(run)` returns the
    noise-regenerating attacker of the module docstring: a function called once
    per step that returns its guess of the step's flat noise vector (it may read
    what the model card publishes - seed, sigma, C, the parameter count). `seed` picks the coordinates and
    the inclusion coins (default: fresh OS entropy).
    """
    import torch

    from training.secure_random import SecureRandom
    from training.trainer import count_units, plan, start_run

    if int(m_canaries) != m_canaries or m_canaries < 10:
        raise InputError(f"m_canaries: expected a whole number >= 10, got {m_canaries!r}")
    m = int(m_canaries)
    acfg = _audit_config(cfg)
    n_units, max_group = count_units(train_df, acfg)
    pplan = plan(n_units, acfg, max_group_size=max_group)
    claimed = float(pplan.epsilon)
    if noise_multiplier is not None:
        if not noise_multiplier >= 0:
            raise InputError(f"noise_multiplier: expected >= 0, got {noise_multiplier!r}")
        pplan = replace(pplan, sigma=float(noise_multiplier))
        from privacy import accounting

        claimed = (math.inf if noise_multiplier == 0 else
                   float(accounting.epsilon_for(pplan.sigma, pplan.sample_rate, pplan.steps, pplan.delta)))
    if before_training is not None:
        before_training(pplan)
    run = (start or start_run)(train_df, acfg, pplan)
    clipper = run.stepper.clipper
    params = clipper.params
    n_params = sum(p.numel() for p in params)
    if n_params < m:
        raise InputError(f"m_canaries: the model has {n_params} parameters, fewer than {m} distinct canary "
                         "coordinates; use fewer canaries or a larger model")
    rng = np.random.default_rng(seed)
    coords = np.sort(rng.choice(n_params, size=m, replace=False))
    included = rng.random(m) < 0.5  # fixed before training, never shown to the run
    injector = CanaryInjector(params, coords, included, acfg.max_grad_norm, pplan.sample_rate,
                              canary_rng if canary_rng is not None else SecureRandom(run.device))
    observer = _Observer(params, coords)
    guesses: list[np.ndarray] = []
    noise_guess = noise_attacker(run) if noise_attacker is not None else None
    coord_index = torch.as_tensor(coords)
    clipper.sum_hook = injector
    try:
        while run.sampler.steps_done < pplan.steps:
            run.stepper.step()
            observer.record()
            if noise_guess is not None:
                guess = noise_guess()
                guesses.append(torch.as_tensor(guess).reshape(-1).cpu()[coord_index].double().numpy())
    finally:
        clipper.sum_hook = None
    if run.stepper.use_graph or run.stepper.graph_steps:
        raise InputError("audit: a CUDA graph replayed the step, so the canaries were not drawn per step")
    # Released sum per step, in clipped-gradient units: B * g_t = S_t + canaries + noise.
    released = privatized_gradients(np.stack(observer.iterates), run.optimizer.param_groups[0])
    released *= pplan.expected_batch_size
    if guesses:
        released = released - np.stack(guesses)
    scores = released.sum(axis=0)
    audit = empirical.one_run_audit(scores, included, delta=acfg.delta, confidence=confidence)
    return {
        "method": METHOD,
        "canaries": m,
        "epsilon_lower_bound": audit.epsilon_lower,
        "claimed_epsilon": claimed,
        "delta": float(acfg.delta),
        "confidence": confidence,
        "k_pos": audit.k_pos, "k_neg": audit.k_neg,
        "guesses": audit.guesses, "correct": audit.correct,
        "candidates": audit.candidates, "correction": audit.correction,
        "passed": bool(audit.epsilon_lower <= claimed),
        "sigma": float(pplan.sigma), "sample_rate": float(pplan.sample_rate), "steps": int(pplan.steps),
        "optimizer": "sgd (iterates invert to the privatized gradients)",
        "attacker": "all iterates, regenerated noise subtracted" if noise_guess is not None else "all iterates",
    }


__all__ = ["CanaryInjector", "METHOD", "privatized_gradients", "run_whitebox_audit"]
