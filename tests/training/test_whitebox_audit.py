"""White-box one-run audit with gradient canaries: power on a noiseless run, the seeded-noise leak found,
and a correct DP run (secure generator) passing against the same attacker."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from privacy.errors import InputError
from training.insecure_random import NOISE_SEED_OFFSET, SeededRandom, start_seeded_run
from training.trainer import TrainConfig, start_run
from training.whitebox_audit import CanaryInjector, privatized_gradients, run_whitebox_audit

from .conftest import DECLARED, synthetic

M = 1000


def _cfg(**kw) -> TrainConfig:
    base = dict(target="y", epochs=5, batch_size=50, lr=0.05, epsilon=1.0, device="cpu", seed=1,
                hidden=[128, 128], **DECLARED)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def df():
    return synthetic(500, seed=4)


def seed_attacker(run):
    """Regenerates each step's noise the way the pre-issue-11 trainer drew it: from the published seed."""
    gen = SeededRandom(run.device, run.cfg.seed + NOISE_SEED_OFFSET)
    clip = run.stepper.clipper
    return lambda: gen.normal(clip.n_params, clip.noise_std)


def test_noiseless_run_is_caught_with_power(df):
    out = run_whitebox_audit(df, _cfg(), M, seed=3, noise_multiplier=0.0)
    assert out["sigma"] == 0.0 and out["claimed_epsilon"] == float("inf")
    assert out["epsilon_lower_bound"] >= 2.0, out
    # The reported k is the search's pick, one of the pre-declared candidates, with its own tally.
    assert out["candidates"] == 12 and out["correction"] == "bonferroni"
    assert out["guesses"] == out["k_pos"] + out["k_neg"] and out["correct"] >= 0.9 * out["guesses"]


def test_seed_derived_noise_is_a_leak_the_audit_finds(df):
    out = run_whitebox_audit(df, _cfg(), M, seed=3, start=start_seeded_run, noise_attacker=seed_attacker)
    assert out["sigma"] > 1.0 and out["claimed_epsilon"] <= 1.0 + 1e-9
    assert out["epsilon_lower_bound"] >= 2.0, out
    assert not out["passed"]


def test_secure_run_passes_against_the_same_attacker_and_the_plain_audit(df):
    attacked = run_whitebox_audit(df, _cfg(), M, seed=3, noise_attacker=seed_attacker)
    assert attacked["claimed_epsilon"] <= 1.0 + 1e-9
    assert attacked["epsilon_lower_bound"] <= attacked["claimed_epsilon"] and attacked["passed"], attacked
    plain = run_whitebox_audit(df, _cfg(), M, seed=3)
    assert plain["epsilon_lower_bound"] <= plain["claimed_epsilon"] and plain["passed"], plain
    assert plain["attacker"] == "all iterates" and "regenerated" in attacked["attacker"]


def test_injector_adds_exactly_c_at_sampled_included_coordinates():
    params = [torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(5))]
    coords = np.array([0, 7, 11, 12, 16])
    included = np.array([True, True, False, True, True])
    inj = CanaryInjector(params, coords, included, 2.5, 1.0, SeededRandom("cpu", 0))  # q = 1: every canary sampled
    sums = {params[0]: torch.ones(3, 4)}
    inj(sums)
    assert sums[params[0]].reshape(-1)[[0, 7]].tolist() == [3.5, 3.5] and sums[params[0]].reshape(-1)[11] == 1.0
    assert sums[params[1]].tolist() == [2.5, 0.0, 0.0, 0.0, 2.5]  # an absent sum is created


def test_sgd_iterates_invert_to_the_gradients():
    p = torch.nn.Parameter(torch.randn(6, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    grads, its = [], [p.detach().clone().numpy()]
    for _ in range(5):
        g = torch.randn(6, dtype=torch.float64)
        p.grad = g.clone()
        opt.step()
        grads.append(g.numpy())
        its.append(p.detach().clone().numpy())
    rec = privatized_gradients(np.stack(its), opt.param_groups[0])
    np.testing.assert_allclose(rec, np.stack(grads), atol=1e-9)


def test_refuses_more_canaries_than_coordinates(df):
    with pytest.raises(InputError, match="distinct canary coordinates"):
        run_whitebox_audit(df.iloc[:100], _cfg(hidden=[4], epochs=1), 5000, seed=0, noise_multiplier=0.0)
