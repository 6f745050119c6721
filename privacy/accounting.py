"""Privacy accounting for DP-SGD (Poisson-subsampled Gaussian mechanism).

Why Opacus underneath: the accountants are the well-tested part of DP
training; home-made math here would be the easiest place to get privacy
silently wrong. Two accountants are exposed on purpose:

* **PRV** (Gopi, Lee & Wutschitz 2021) — tight numerical accounting. We use it
  both to *calibrate* sigma from a target (epsilon, delta) and to *report* the
  epsilon of one run, so calibration and reporting always agree.
* **RDP** (Mironov 2017; Mironov, Talwar & Zhang 2019) — looser per run, but
  RDP at one order *fixed in advance* adds up under fully adaptive
  composition (a valid privacy filter, Feldman & Zrnic 2021; Whitehouse et al.
  2023). The budget ledger (`privacy/filter.py`) charges runs at such an
  order; PRV/PLD epsilons must never be summed as if they were a filter.

Opacus (and therefore torch) is imported lazily inside the functions so that
`privgov --help` does not pay the torch import. The one exception is
`rdp_to_epsilon`: the budget ledger calls it while it holds the database write
lock, so it is Opacus' one-line conversion written in plain `math` (checked
against Opacus in tests/privacy/test_ledger.py) and never imports torch.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

from privacy.errors import InputError

# A wide grid of Renyi orders: fine near 1 (large-epsilon / few-step regimes),
# up to 512 (small-epsilon / heavy-noise regimes), so the optimum is rarely at
# the edge (which would make the conversion loose and makes Opacus warn).
DEFAULT_ORDERS: tuple[float, ...] = tuple(
    [1.0 + x / 20.0 for x in range(5, 20)]  # 1.25 .. 1.95
    + [2.0 + x / 4.0 for x in range(0, 16)]  # 2.0 .. 5.75
    + [float(x) for x in range(6, 64)]  # 6 .. 63
    + [64.0, 80.0, 96.0, 128.0, 160.0, 192.0, 256.0, 320.0, 384.0, 448.0, 512.0]
)

# PRV discretisation error; the reported epsilon is the accountant's upper bound.
PRV_EPS_ERROR = 0.005


def _is_real(value: object) -> bool:
    """Python and numpy numbers (np.float32 included); bools are not numbers here."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_epsilon(value: float, field: str = "epsilon") -> float:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{field}: expected a finite number > 0, got {value!r}")
    return float(value)


def _check_delta(value: float, field: str = "delta") -> float:
    if not _is_real(value) or not (0.0 < value < 1.0):
        raise InputError(f"{field}: expected a number with 0 < delta < 1, got {value!r}")
    return float(value)


def _check_sample_rate(value: float, field: str = "sample_rate") -> float:
    if not _is_real(value) or not (0.0 < value <= 1.0):
        raise InputError(f"{field}: expected 0 < sample_rate <= 1, got {value!r}")
    return float(value)


def _check_steps(value: int, field: str = "steps") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        try:
            ok = float(value).is_integer() and int(value) >= 1  # numpy ints, 10.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"{field}: expected an integer >= 1, got {value!r}")
    return int(value)


def _check_sigma(value: float, field: str = "sigma") -> float:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{field}: expected a noise multiplier > 0, got {value!r}")
    return float(value)


def _check_orders(orders: Sequence[float]) -> list[float]:
    out = [float(a) for a in orders]
    if not out or any(not math.isfinite(a) or a <= 1.0 for a in out):
        raise InputError("orders: expected a non-empty list of Renyi orders > 1")
    return out


def calibrate_sigma(
    target_epsilon: float, delta: float, sample_rate: float, steps: int
) -> float:
    """Smallest noise multiplier whose PRV epsilon is <= target_epsilon.

    Binary search by Opacus (`get_noise_multiplier`, accountant="prv"); the
    returned sigma reaches an epsilon within 0.01 *below* the target, so the
    run never exceeds what the ledger reserved.
    """
    target_epsilon = _check_epsilon(target_epsilon, "target_epsilon")
    delta = _check_delta(delta)
    sample_rate = _check_sample_rate(sample_rate)
    steps = _check_steps(steps)
    from opacus.accountants.utils import get_noise_multiplier

    try:
        with warnings.catch_warnings():  # PRV's domain bound uses RDP internally
            warnings.simplefilter("ignore", UserWarning)
            sigma = get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant="prv",
                epsilon_tolerance=0.01,
                eps_error=PRV_EPS_ERROR,
            )
        return float(sigma)
    except ValueError as exc:  # "The privacy budget is too low."
        raise InputError(
            f"target_epsilon: {target_epsilon} is unreachable at delta={delta}, "
            f"sample_rate={sample_rate}, steps={steps} ({exc}); raise epsilon or lower steps"
        ) from exc


def epsilon_for(sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    """PRV epsilon (upper bound) of `steps` Poisson-subsampled Gaussian steps.

    Same accountant as `calibrate_sigma`, so calibrate -> report round-trips.
    Per-run figure only: do not add these across runs (use RDP curves).
    """
    sigma = _check_sigma(sigma)
    sample_rate = _check_sample_rate(sample_rate)
    steps = _check_steps(steps)
    delta = _check_delta(delta)
    from opacus.accountants import PRVAccountant

    acc = PRVAccountant()
    acc.history = [(sigma, sample_rate, steps)]
    with warnings.catch_warnings():  # PRV's domain bound uses RDP internally
        warnings.simplefilter("ignore", UserWarning)
        return float(acc.get_epsilon(delta=delta, eps_error=PRV_EPS_ERROR))


def rdp_curve(
    sigma: float,
    sample_rate: float,
    steps: int,
    orders: Sequence[float] = DEFAULT_ORDERS,
) -> list[float]:
    """RDP values of the run at each order (Opacus' subsampled-Gaussian RDP).

    These are what the ledger stores and sums across runs: RDP composes
    additively even when later runs are chosen after seeing earlier ones.
    """
    sigma = _check_sigma(sigma)
    sample_rate = _check_sample_rate(sample_rate)
    steps = _check_steps(steps)
    orders_l = _check_orders(orders)
    from opacus.accountants.analysis.rdp import compute_rdp

    rdp = compute_rdp(q=sample_rate, noise_multiplier=sigma, steps=steps, orders=orders_l)
    return [float(x) for x in rdp]


def rdp_to_epsilon(orders: Sequence[float], rdp: Sequence[float], delta: float) -> float:
    """Convert an RDP curve to (epsilon, delta)-DP, minimising over the orders.

    Minimising is valid for one run (or a sequence fixed in advance); across
    adaptively chosen runs the order must be fixed first (`privacy.filter`).

    The improved conversion of Balle et al. (2020, Thm 21), the same formula as
    Opacus' `get_privacy_spent`. Pure `math` on purpose: the budget ledger runs
    it inside its write transaction, and importing Opacus there (torch, seconds)
    held the lock long enough for concurrent runs to fail with "database busy".
    An infinite RDP value gives an infinite epsilon at that order.
    """
    orders_l = _check_orders(orders)
    rdp_l = [float(x) for x in rdp]
    if len(rdp_l) != len(orders_l):
        raise InputError(
            f"rdp: expected {len(orders_l)} values (one per order), got {len(rdp_l)}"
        )
    if any(math.isnan(x) or x < 0 for x in rdp_l):
        raise InputError("rdp: expected non-negative RDP values")
    delta = _check_delta(delta)
    return float(min(r + conversion_term(alpha, delta) for alpha, r in zip(orders_l, rdp_l)))


def conversion_term(alpha: float, delta: float) -> float:
    """What (alpha, rho)-RDP adds to rho when converted to (epsilon, delta)-DP.

    epsilon = rho + log((alpha-1)/alpha) - (log delta + log alpha)/(alpha-1)
    (Balle et al. 2020, Thm 21). Separate from `rdp_to_epsilon` because the
    budget ledger's Renyi filter fixes alpha in advance and needs the term on
    its own: the filter's RDP budget is B(alpha) = eps_cap - conversion_term.
    Pure `math` (the ledger calls it under its write lock).
    """
    a = float(alpha)
    if not math.isfinite(a) or a <= 1.0:
        raise InputError(f"alpha: expected a finite Renyi order > 1, got {alpha!r}")
    return math.log((a - 1) / a) - (math.log(_check_delta(delta)) + math.log(a)) / (a - 1)


def group_privacy(epsilon: float, delta: float, k: int) -> tuple[float, float]:
    """(epsilon, delta)-DP for groups of k units: (k*eps, k*e^((k-1)eps)*delta).

    Why: when a privacy unit (e.g. a patient) contributes up to k rows and the
    trainer does not bound contributions to one row, the record-level guarantee
    only protects the person at this group level (Dwork & Roth 2014, Thm 2.2 and
    its (eps, delta) extension; Vadhan 2017, Lemma 2.2). The delta term grows
    exponentially in k*eps, which is why bounding one row per unit is the
    default and group accounting is opt-in. The result may have delta >= 1,
    meaning no meaningful guarantee; callers should refuse such runs.
    """
    epsilon = _check_epsilon(epsilon)
    delta = _check_delta(delta)
    k = _check_steps(k, "k")
    return float(k * epsilon), float(k * math.exp((k - 1) * epsilon) * delta)


__all__ = [
    "DEFAULT_ORDERS",
    "calibrate_sigma",
    "conversion_term",
    "epsilon_for",
    "group_privacy",
    "rdp_curve",
    "rdp_to_epsilon",
]
