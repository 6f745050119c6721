"""Empirical audit statistics: MIA summary and the one-run lower bound."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from privacy.empirical import (
    choose_k,
    epsilon_lower_bound,
    membership_inference,
    one_run_audit,
    one_run_lower_bound,
    one_run_p_value,
)
from privacy.errors import InputError


# -- membership inference ------------------------------------------------------
def test_mia_identical_distributions_is_chance():
    rng = np.random.default_rng(1)
    res = membership_inference(rng.normal(size=5000), rng.normal(size=5000))
    assert abs(res.auc - 0.5) < 0.03
    assert res.tpr_at_1pct_fpr < 0.03
    assert res.advantage < 0.05


def test_mia_separated_distributions_is_perfect():
    rng = np.random.default_rng(2)
    res = membership_inference(rng.normal(6.0, 1.0, 2000), rng.normal(0.0, 1.0, 2000))
    assert res.auc > 0.999
    assert res.tpr_at_1pct_fpr > 0.99
    assert res.best_balanced_accuracy > 0.99


def test_mia_auc_matches_theory_and_handles_ties():
    rng = np.random.default_rng(3)
    res = membership_inference(rng.normal(1.0, 1.0, 20000), rng.normal(0.0, 1.0, 20000))
    assert res.auc == pytest.approx(norm.cdf(1 / math.sqrt(2)), abs=0.01)
    # TPR at 1% FPR for a unit shift: 1 - Phi(z_0.99 - 1)
    assert res.tpr_at_1pct_fpr == pytest.approx(1 - norm.cdf(norm.ppf(0.99) - 1.0), abs=0.02)
    tied = membership_inference(np.zeros(100), np.zeros(50))
    assert tied.auc == 0.5 and tied.tpr_at_1pct_fpr == 0.0
    flipped = membership_inference([0.0, 1.0], [2.0, 3.0])
    assert flipped.auc == 0.0


def test_mia_validates_inputs():
    with pytest.raises(InputError, match="member_scores"):
        membership_inference([], [1.0])
    with pytest.raises(InputError, match="nonmember_scores"):
        membership_inference([1.0], [float("nan")])


# -- one-run audit -------------------------------------------------------------
def _randomized_response(eps: float, m: int, seed: int):
    """Per-canary eps-DP mechanism: report membership, flipped w.p. 1/(1+e^eps)."""
    rng = np.random.default_rng(seed)
    included = rng.random(m) < 0.5
    keep = rng.random(m) < math.exp(eps) / (1 + math.exp(eps))
    return np.where(keep, included, ~included).astype(float), included


def _gaussian_eps(sigma: float, delta: float) -> float:
    """Exact (eps, delta) of the Gaussian mechanism, sensitivity 1 (Balle & Wang 2018)."""
    def gap(eps):
        return (norm.cdf(0.5 / sigma - eps * sigma)
                - math.exp(eps) * norm.cdf(-0.5 / sigma - eps * sigma) - delta)
    return brentq(gap, 1e-9, 100)


def test_p_value_matches_reference_formula():
    from scipy.stats import binom

    m, r, v, eps, delta = 1000, 200, 150, 1.0, 1e-5
    q = math.exp(eps) / (1 + math.exp(eps))
    alpha = max(sum(binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    expected = binom.sf(v - 1, r, q) + 2 * m * delta * alpha
    assert one_run_p_value(m, r, v, eps, delta) == pytest.approx(expected, rel=1e-9)
    # Larger eps makes the observation more plausible; delta only adds.
    assert one_run_p_value(m, r, v, 2.0, delta) > one_run_p_value(m, r, v, 1.0, delta)
    assert one_run_p_value(m, r, v, eps, 1e-3) > one_run_p_value(m, r, v, eps, 0.0)


@pytest.mark.parametrize("eps", [0.5, 1.0, 2.0])
def test_bound_below_true_eps_for_randomized_response(eps):
    bounds = [one_run_lower_bound(*_randomized_response(eps, 4000, seed), 2000, 2000, 1e-5)
              for seed in range(20)]
    exceed = sum(b > eps for b in bounds)
    assert exceed <= 3  # 95% confidence: expect ~1 in 20
    # ...and it is a tight audit here, not a vacuous one.
    assert np.median(bounds) > 0.8 * eps


def test_bound_below_true_eps_for_gaussian_mechanism():
    sigma, delta, m = 0.5, 1e-5, 10000
    true_eps = _gaussian_eps(sigma, delta)
    exceed = 0
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        included = rng.random(m) < 0.5
        scores = included + rng.normal(0.0, sigma, m)
        res = one_run_audit(scores, included, delta)
        assert 0 < res.epsilon_lower
        exceed += res.epsilon_lower > true_eps
    assert exceed <= 1


def test_perfect_guesses_give_a_large_bound_so_the_audit_can_fail():
    rng = np.random.default_rng(7)
    included = rng.random(1000) < 0.5
    scores = included + rng.normal(0.0, 0.01, 1000)
    bound = one_run_lower_bound(scores, included, 100, 100, 1e-5)
    assert bound > 3.0  # would flag a run that claims eps = 1 or 2
    assert epsilon_lower_bound(1000, 200, 200, 1e-5) == pytest.approx(bound)
    # A mechanism leaking more than it claims is caught: true eps 4 vs claimed 1.
    assert one_run_lower_bound(*_randomized_response(4.0, 2000, 0), 1000, 1000, 1e-5) > 1.0


def test_no_signal_gives_zero_bound_mostly():
    positives = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        included = rng.random(2000) < 0.5
        positives += one_run_lower_bound(rng.normal(size=2000), included, 200, 200, 1e-5) > 0
    assert positives <= 3
    assert epsilon_lower_bound(100, 10, 5, 1e-5) == 0.0  # chance-level guesses


def test_audit_grid_is_bonferroni_corrected():
    scores, included = _randomized_response(2.0, 2000, 5)
    grid = choose_k(2000)
    res = one_run_audit(scores, included, 1e-5, k_grid=grid)
    singles = [one_run_lower_bound(scores, included, kp, kn, 1e-5) for kp, kn in grid]
    assert 0 < res.epsilon_lower < max(singles)
    # Each candidate is tested at level 0.05 / len(grid); the reported one is the best of those.
    per_test = [one_run_lower_bound(scores, included, kp, kn, 1e-5, confidence=1 - 0.05 / len(grid))
                for kp, kn in grid]
    assert res.epsilon_lower == pytest.approx(max(per_test))
    assert (res.k_pos, res.k_neg) == grid[int(np.argmax(per_test))]
    assert res.candidates == len(grid) and res.correction == "bonferroni"
    single = one_run_audit(scores, included, 1e-5, k_grid=[(500, 500)])
    assert single.epsilon_lower == pytest.approx(singles[grid.index((500, 500))])
    assert single.guesses == 1000 and single.canaries == 2000 and single.correction == "none"


def test_search_on_random_scores_reports_about_zero():
    """No signal: across repetitions the searched bound is ~0 and a positive one is rare (<= 5% in theory)."""
    bounds = []
    for seed in range(40):
        rng = np.random.default_rng(1000 + seed)
        included = rng.random(1000) < 0.5
        bounds.append(one_run_audit(rng.normal(size=1000), included, 1e-5).epsilon_lower)
    bounds = np.array(bounds)
    assert (bounds > 0).sum() <= 4
    assert np.median(bounds) == 0.0 and bounds.max() < 0.5


def test_search_reports_the_chosen_k_not_the_first_candidate():
    """With no signal anywhere, the reported k is the candidate with the strongest evidence, not grid[0]."""
    m = 200
    included = np.zeros(m, dtype=bool)
    included[::2] = True
    scores = np.linspace(1.0, 0.0, m)  # top 2 alternate, so k=(1, 1) is 1/2 right
    scores[np.flatnonzero(included)[:40]] += 10.0  # the 40 highest are all included, then nothing
    res = one_run_audit(scores, included, 1e-5)
    grid = choose_k(m)
    assert (res.k_pos, res.k_neg) != grid[0] and res.guesses > 2
    assert res.correct == sum(included[np.argsort(-scores, kind="stable")[:res.k_pos]]) + (
        sum(~included[np.argsort(-scores, kind="stable")[m - res.k_neg:]]) if res.k_neg else 0)
    none = one_run_audit(np.zeros(m), included, 1e-5)
    assert none.epsilon_lower == 0.0 and none.candidates == len(grid)


def test_choose_k_and_validation():
    assert choose_k(1000, one_sided=False) == [(5, 5), (10, 10), (25, 25), (50, 50), (100, 100), (250, 250)]
    assert choose_k(1000)[6:] == [(10, 0), (20, 0), (50, 0), (100, 0), (200, 0), (500, 0)]
    with pytest.raises(InputError, match="k_grid"):
        one_run_audit(np.zeros(10), np.zeros(10, dtype=bool), 1e-5, k_grid=[(0, 0)])
    s, inc = _randomized_response(1.0, 100, 0)
    with pytest.raises(InputError, match="included"):
        one_run_lower_bound(s, inc[:-1], 10, 10, 1e-5)
    with pytest.raises(InputError, match="k_pos"):
        one_run_lower_bound(s, inc, 80, 30, 1e-5)
    with pytest.raises(InputError, match="confidence"):
        one_run_lower_bound(s, inc, 10, 10, 1e-5, confidence=1.0)
    with pytest.raises(InputError, match="delta"):
        one_run_lower_bound(s, inc, 10, 10, 1.0)
    with pytest.raises(InputError, match="included"):
        one_run_lower_bound(s, np.full(100, 2), 10, 10, 1e-5)
