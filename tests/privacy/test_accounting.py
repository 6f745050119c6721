"""Accounting: PRV epsilon cross-checked against an independent PLD accountant."""
from __future__ import annotations

import math

import pytest

from privacy.accounting import (
    DEFAULT_ORDERS,
    calibrate_sigma,
    epsilon_for,
    group_privacy,
    rdp_curve,
    rdp_to_epsilon,
)
from privacy.errors import InputError

# (sigma, q, steps, delta): DP-SGD-like regimes from few large batches to many small ones.
SETTINGS = [
    (1.0, 0.01, 1000, 1e-5),
    (0.8, 0.004, 2500, 1e-5),
    (1.5, 0.02, 500, 1e-6),
    (2.0, 0.05, 200, 1e-5),
    (4.0, 0.1, 100, 1e-5),
    (1.1, 0.256, 50, 1e-5),
]


def _pld_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    from dp_accounting import dp_event
    from dp_accounting.pld import PLDAccountant

    acc = PLDAccountant(value_discretization_interval=1e-4)
    event = dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps
    )
    acc.compose(event)
    return float(acc.get_epsilon(delta))


@pytest.mark.parametrize("sigma,q,steps,delta", SETTINGS)
def test_epsilon_for_matches_dp_accounting_pld(sigma, q, steps, delta):
    ours = epsilon_for(sigma, q, steps, delta)
    ref = _pld_epsilon(sigma, q, steps, delta)
    assert abs(ours - ref) / ref < 0.01, (ours, ref)


def test_rdp_is_looser_than_prv_but_close():
    sigma, q, steps, delta = SETTINGS[0]
    prv = epsilon_for(sigma, q, steps, delta)
    rdp = rdp_to_epsilon(DEFAULT_ORDERS, rdp_curve(sigma, q, steps), delta)
    assert prv < rdp < 1.3 * prv


@pytest.mark.parametrize("target,q,steps", [(1.0, 0.01, 1000), (4.0, 0.05, 300)])
def test_calibrate_round_trip(target, q, steps):
    delta = 1e-5
    sigma = calibrate_sigma(target, delta, q, steps)
    eps = epsilon_for(sigma, q, steps, delta)
    assert target - 0.03 <= eps <= target  # never above the target, and tight
    # A bit less noise must overshoot: sigma is (nearly) the smallest that fits.
    assert epsilon_for(sigma * 0.97, q, steps, delta) > target - 0.01


def test_rdp_curve_is_additive_in_steps():
    a = rdp_curve(1.0, 0.01, 100)
    b = rdp_curve(1.0, 0.01, 300)
    assert len(a) == len(DEFAULT_ORDERS)
    assert all(math.isclose(3 * x, y, rel_tol=1e-9) for x, y in zip(a, b))


def test_default_orders_avoid_edge_optimum():
    from opacus.accountants.analysis.rdp import get_privacy_spent

    for sigma, q, steps, delta in SETTINGS:
        _, best = get_privacy_spent(
            orders=list(DEFAULT_ORDERS), rdp=rdp_curve(sigma, q, steps), delta=delta
        )
        assert DEFAULT_ORDERS[0] < best < DEFAULT_ORDERS[-1]


def test_group_privacy():
    eps, delta = group_privacy(0.5, 1e-6, 3)
    assert eps == pytest.approx(1.5)
    assert delta == pytest.approx(3 * math.exp(1.0) * 1e-6)
    assert group_privacy(0.5, 1e-6, 1) == pytest.approx((0.5, 1e-6))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(target_epsilon=0.0), "target_epsilon"),
        (dict(target_epsilon=-1.0), "target_epsilon"),
        (dict(delta=0.0), "delta"),
        (dict(delta=1.0), "delta"),
        (dict(sample_rate=0.0), "sample_rate"),
        (dict(sample_rate=1.5), "sample_rate"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
    ],
)
def test_calibrate_validates_inputs(kwargs, field):
    args = dict(target_epsilon=1.0, delta=1e-5, sample_rate=0.01, steps=100)
    args.update(kwargs)
    with pytest.raises(InputError, match=field):
        calibrate_sigma(**args)


def test_other_functions_validate_inputs():
    with pytest.raises(InputError, match="sigma"):
        epsilon_for(0.0, 0.01, 10, 1e-5)
    with pytest.raises(InputError, match="delta"):
        epsilon_for(1.0, 0.01, 10, 0.0)
    with pytest.raises(InputError, match="rdp"):
        rdp_to_epsilon([2.0, 3.0], [0.1], 1e-5)
    with pytest.raises(InputError, match="orders"):
        rdp_curve(1.0, 0.01, 10, orders=[0.5])
    with pytest.raises(InputError, match="k"):
        group_privacy(1.0, 1e-5, 0)

