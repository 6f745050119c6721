"""The budget ledger's admission rule: a Rényi filter plus a basic-composition share.

Why a filter and not "compose, then check": runs on one dataset are chosen
adaptively (the next run's settings, even whether it happens, depend on what
earlier runs released), so the total must be bounded by a *privacy filter*, a
stopping rule that is valid under fully adaptive composition. Converting the
sum of the runs' RDP curves at whichever order looks best after the fact is not
such a rule. What is:

* **Rényi filter** (Feldman & Zrnic, "Individual Privacy Accounting via a Rényi
  Filter", NeurIPS 2021; Whitehouse, Ramdas, Rogers & Wu, "Fully-
  Adaptive Composition in Differential Privacy", ICML 2023). Fix an order alpha
  and an RDP budget B *before any run*; admit a run iff the RDP (at alpha) of
  every admitted run plus the new one stays <= B. The whole adaptive
  interaction is then (alpha, B)-RDP, and converting that one guarantee to
  (epsilon, delta) with `accounting.conversion_term` (Balle et al. 2020) is
  valid. So B(alpha) = eps_rdp - conversion_term(alpha, delta_rdp) and the
  interaction is (eps_rdp, delta_rdp)-DP.
* **Basic-composition filter** (Rogers, Roth, Ullman & Vadhan, "Privacy
  Odometers and Filters", NeurIPS 2016): runs without an RDP curve (group-
  bounded runs, whose per-unit guarantee is only an (epsilon, delta) pair) are
  admitted iff the sum of their epsilons <= eps_basic and of their deltas
  <= delta_basic.
* **The split is fixed with the cap.** ``basic_share`` s reserves
  (s eps_cap, s delta_cap) for the basic filter and gives the Rényi filter the
  rest. The two filters run concurrently on the same data; concurrent
  composition of (epsilon, delta)-DP interactive mechanisms is no worse than
  their sequential (basic) composition (Vadhan & Wang, TCC 2021; Lyu, NeurIPS
  2022), so the dataset's guarantee is ((1-s) eps_cap + s eps_cap,
  (1-s) delta_cap + s delta_cap) = the cap. s = 0 (the default) admits no run
  without a curve.

Pure math, no SQL and nothing heavy: the ledger calls this under its database
write lock.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from privacy.accounting import DEFAULT_ORDERS, conversion_term
from privacy.errors import InputError

# ---------------------------------------------------------------- the order


def rdp_budget(alpha: float, epsilon: float, delta: float) -> float:
    """B(alpha): the RDP at `alpha` that converts to exactly (epsilon, delta)-DP."""
    return float(epsilon) - conversion_term(alpha, delta)


def choose_order(epsilon: float, delta: float, orders: Sequence[float] = DEFAULT_ORDERS) -> float:
    """The filter's order for an (epsilon, delta) cap, chosen without looking at any run.

    Why argmax B(alpha)/alpha: a Gaussian mechanism has RDP rho(alpha) =
    alpha / (2 sigma^2), a straight line through 0, and DP-SGD runs (subsampled
    Gaussian) are close to straight over the orders that matter. For runs of
    slope s, ``B(alpha) / (alpha s)`` of them fit, so the order that fits the
    most is argmax B(alpha)/alpha, whatever s is - it depends on the cap only,
    which is what a filter needs. For (3, 1e-5) it is alpha = 8 (B = 1.79): six
    PRV-calibrated epsilon=1 DP-SGD runs fit, as many as the old after-the-fact
    composition admitted (so do other DP-SGD shapes measured: batch 256-1024,
    epsilon 0.25-3, caps 1-10). Orders come from the grid the trainer reports
    RDP on, so runs are charged at an order they were evaluated at.

    Known cost: a curve far steeper than a line at the chosen order is charged
    much more than its own epsilon suggests - e.g. sigma=1, q=0.01, 200 steps
    (PRV epsilon 0.92) fits 9 times under (3, 1e-5) (10 before) but not at all
    under (2, 1e-5), where the order is 10. More noise over more steps fixes it.
    """
    best, best_slope = None, 0.0
    for alpha in sorted(float(a) for a in orders):
        slope = rdp_budget(alpha, epsilon, delta) / alpha
        if slope > best_slope:
            best, best_slope = alpha, slope
    if best is None:
        raise InputError(f"budget cap: eps={epsilon:g} delta={delta:g} leaves no Renyi budget at any order "
                         f"up to {max(orders):g}; raise epsilon or delta")
    return best


def rdp_at(orders: Sequence[float], rdp: Sequence[float], alpha: float) -> float:
    """A run's RDP at `alpha`, read conservatively from its curve (sorted orders).

    RDP is non-decreasing in the order (van Erven & Harremoës 2014), so the value
    at the smallest grid order >= alpha upper-bounds the value at alpha; nothing
    is interpolated downward. A curve that stops below alpha gives inf (refused).
    """
    i = bisect.bisect_left(orders, alpha)
    return math.inf if i == len(orders) else float(rdp[i])


# ---------------------------------------------------------------- the cap


@dataclass(frozen=True)
class FilterCap:
    """A dataset's cap as the filter sees it: fixed once, recorded with the cap."""

    epsilon_cap: float
    delta_cap: float
    order: float
    basic_share: float = 0.0

    @classmethod
    def fix(cls, epsilon_cap: float, delta_cap: float, basic_share: float = 0.0,
            orders: Sequence[float] = DEFAULT_ORDERS) -> "FilterCap":
        """Fix the split and the order for a cap (before any run is seen)."""
        share = check_share(basic_share)
        alpha = choose_order((1 - share) * epsilon_cap, (1 - share) * delta_cap, orders)
        return cls(float(epsilon_cap), float(delta_cap), alpha, share)

    @property
    def rdp_epsilon(self) -> float:
        return (1 - self.basic_share) * self.epsilon_cap

    @property
    def rdp_delta(self) -> float:
        return (1 - self.basic_share) * self.delta_cap

    @property
    def basic_epsilon(self) -> float:
        return self.basic_share * self.epsilon_cap

    @property
    def basic_delta(self) -> float:
        return self.basic_share * self.delta_cap

    @property
    def rdp_budget(self) -> float:
        return rdp_budget(self.order, self.rdp_epsilon, self.rdp_delta)

    def epsilon_of(self, rho: float, n_curves: int) -> float:
        """(epsilon at rdp_delta) of rho admitted RDP at the order; 0 before any curve run.

        This is the conversion of what the filter has admitted so far, not the
        guarantee (the guarantee is the cap). At a fixed order it includes the
        conversion term (about 1.2 at (3, 1e-5)) as soon as one run is in.
        """
        return 0.0 if n_curves == 0 else rho + conversion_term(self.order, self.rdp_delta)


def check_share(basic_share: float) -> float:
    try:
        s = float(basic_share)
    except (TypeError, ValueError):
        raise InputError(f"basic_share: expected a number with 0 <= basic_share < 1, got {basic_share!r}") from None
    if not (0.0 <= s < 1.0):
        raise InputError(f"basic_share: expected a number with 0 <= basic_share < 1, got {basic_share!r}")
    return s


def smallest_share(eps_b: float, delta_b: float, eps_cap: float, delta_cap: float) -> float:
    """Smallest basic_share whose (eps, delta) covers the given basic sums (checked in floats)."""
    s = max(eps_b / eps_cap, delta_b / delta_cap)
    while s < 1.0 and (s * eps_cap < eps_b or s * delta_cap < delta_b):
        s = math.nextafter(s, 2.0)
    return s


def check_curve(
    orders: Sequence[float] | None, rdp: Sequence[float] | None
) -> tuple[list[float] | None, list[float] | None]:
    """A run's RDP curve, sorted by order, or (None, None) for a basic-composition run."""
    if orders is None and rdp is None:
        return None, None
    if orders is None or rdp is None:
        raise InputError("orders/rdp: give both (an RDP curve) or neither (basic composition)")
    o = [float(a) for a in orders]
    r = [float(x) for x in rdp]
    if not o or len(o) != len(r):
        raise InputError(f"rdp: expected one value per order ({len(o)} orders), got {len(r)}")
    if any(not math.isfinite(a) or a <= 1.0 for a in o):
        raise InputError("orders: expected finite Renyi orders > 1")
    if any(math.isnan(x) or x < 0 for x in r):
        raise InputError("rdp: expected non-negative RDP values (inf allowed)")
    pairs = sorted(zip(o, r))
    return [a for a, _ in pairs], [x for _, x in pairs]


def check_eps_delta(epsilon: float, delta: float) -> tuple[float, float]:
    try:
        e, d = float(epsilon), float(delta)
    except (TypeError, ValueError):
        raise InputError(f"epsilon/delta: expected numbers, got {epsilon!r}, {delta!r}") from None
    if not math.isfinite(e) or e < 0:
        raise InputError(f"epsilon: expected a finite number >= 0, got {epsilon!r}")
    if not (0.0 <= d < 1.0):
        raise InputError(f"delta: expected 0 <= delta < 1, got {delta!r}")
    return e, d



# ---------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """One run as the filter counts it: a curve (Rényi filter) or (epsilon, delta) (basic)."""

    epsilon: float
    delta: float
    orders: list[float] | None
    rdp: list[float] | None

    def charge(self, alpha: float) -> float | None:
        """RDP at the filter's order; None for a basic-composition entry."""
        if self.orders is None or self.rdp is None:
            return None
        return rdp_at(self.orders, self.rdp, alpha)


@dataclass(frozen=True)
class Spend:
    """What a set of entries uses of each filter (sums with `math.fsum`, order-independent)."""

    rdp: float = 0.0
    curves: int = 0
    basic_epsilon: float = 0.0
    basic_delta: float = 0.0

    @classmethod
    def of(cls, entries: Iterable[Entry], alpha: float) -> "Spend":
        charges, eps_b, delta_b = [], [], []
        for e in entries:
            c = e.charge(alpha)
            if c is None:
                eps_b.append(e.epsilon)
                delta_b.append(e.delta)
            else:
                charges.append(c)
        return cls(math.fsum(charges), len(charges), math.fsum(eps_b), math.fsum(delta_b))

    def fits(self, cap: FilterCap) -> bool:
        return (self.rdp <= cap.rdp_budget and self.basic_epsilon <= cap.basic_epsilon
                and self.basic_delta <= cap.basic_delta)


def refusal(cap: FilterCap, current: Sequence[Entry], new: Entry) -> str | None:
    """Why `new` is not admitted after `current` (one line), or None if it is.

    Checked exactly (no float slack): sums use `math.fsum`, so a refusal by
    rounding needs the true sum within one ulp of the budget.
    """
    if new.delta > cap.delta_cap:
        return f"the run's delta={new.delta:g} exceeds the cap's delta={cap.delta_cap:g}"
    spend = Spend.of(current, cap.order)
    charge = new.charge(cap.order)
    if charge is None:
        if cap.basic_share == 0:
            return ("the run has no RDP curve (basic composition) and the ledger reserves no basic-composition "
                    "share (basic_share=0 when the cap was set); an admin must set the cap with basic_share > 0 "
                    "to admit such runs")
        eps_after = math.fsum([spend.basic_epsilon, new.epsilon])
        delta_after = math.fsum([spend.basic_delta, new.delta])
        if eps_after <= cap.basic_epsilon and delta_after <= cap.basic_delta:
            return None
        return (f"the basic-composition share (basic_share={cap.basic_share:g}: eps={cap.basic_epsilon:.4g} "
                f"delta={cap.basic_delta:.3g}) holds eps={spend.basic_epsilon:.4g} delta={spend.basic_delta:.3g}; "
                f"this run would make eps={eps_after:.4g} delta={delta_after:.3g}")
    if math.isinf(charge):
        return (f"the run's RDP curve stops below the ledger's order {cap.order:g} (or is infinite there); "
                "report RDP on the standard order grid")
    after = math.fsum([spend.rdp, charge])
    if after <= cap.rdp_budget:
        return None
    return (f"Renyi filter at order {cap.order:g} has RDP budget {cap.rdp_budget:.4g}, "
            f"{spend.curves} admitted runs hold {spend.rdp:.4g} (eps={cap.epsilon_of(spend.rdp, spend.curves):.4g} "
            f"at this order); this run needs {charge:.4g} more")


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class RunRow:
    """One ledger entry as shown by `status` (no data, only accounting).

    `epsilon`/`target_epsilon` are the run's own (PRV) figures, for the run
    alone; `rdp_charge` is what the filter charges it (RDP at the ledger's
    order; None for a basic-composition run, charged its (epsilon, delta)).
    """

    run_uid: str
    state: str
    epsilon: float
    target_epsilon: float
    delta: float
    has_curve: bool
    reserved_at: dt.datetime
    committed_at: dt.datetime | None
    released_at: dt.datetime | None
    rdp_charge: float | None = None


@dataclass(frozen=True)
class BudgetStatus:
    """Where one dataset's budget stands, in the filter's own terms first.

    The guarantee is the cap. The filter admits runs while `rdp_spent +
    rdp_reserved <= rdp_budget` (RDP at `order`) and, for runs without a curve,
    while the basic sums stay inside the basic share. The epsilon figures are
    conversions of what has been admitted, at `order` and the Rényi filter's
    delta, plus the basic epsilons: `spent` (= `epsilon_spent`) over committed
    runs, `composed_epsilon` over committed + reserved, `reserved` the
    difference, `remaining` what is left of each filter's epsilon (never < 0).
    `naive_sum_epsilon` adds the runs' own PRV epsilons; it is *not* a bound
    (nothing is "saved" by comparing it with the filter): shown for reference.
    """

    lineage_id: str
    unit: str
    epsilon_cap: float
    delta_cap: float
    spent: float
    reserved: float
    remaining: float
    composed_epsilon: float
    naive_sum_epsilon: float
    runs: list[RunRow] = field(default_factory=list)
    order: float = 0.0
    basic_share: float = 0.0
    rdp_budget: float = 0.0
    rdp_spent: float = 0.0
    rdp_reserved: float = 0.0
    rdp_remaining: float = 0.0
    basic_epsilon_spent: float = 0.0
    basic_delta_spent: float = 0.0
    basic_epsilon_reserved: float = 0.0
    basic_delta_reserved: float = 0.0
    needs_decision: str | None = None
    note: str | None = None

    @property
    def cap(self) -> tuple[float, float]:
        return (self.epsilon_cap, self.delta_cap)

    @property
    def epsilon_spent(self) -> float:
        return self.spent


def summarize(cap: FilterCap, committed: Sequence[Entry], reserved: Sequence[Entry]) -> dict[str, float]:
    """The numeric fields of a `BudgetStatus` for the given active entries."""
    done = Spend.of(committed, cap.order)
    held = Spend.of(reserved, cap.order)
    rdp_all = math.fsum([done.rdp, held.rdp])
    n_all = done.curves + held.curves
    spent = cap.epsilon_of(done.rdp, done.curves) + done.basic_epsilon
    basic_all = math.fsum([done.basic_epsilon, held.basic_epsilon])
    composed = cap.epsilon_of(rdp_all, n_all) + basic_all
    remaining = (max(0.0, cap.rdp_epsilon - cap.epsilon_of(rdp_all, n_all))
                 + max(0.0, cap.basic_epsilon - basic_all))
    return dict(
        spent=spent, reserved=max(0.0, composed - spent), remaining=remaining, composed_epsilon=composed,
        naive_sum_epsilon=math.fsum(e.epsilon for e in [*committed, *reserved]),
        order=cap.order, basic_share=cap.basic_share, rdp_budget=cap.rdp_budget,
        rdp_spent=done.rdp, rdp_reserved=held.rdp, rdp_remaining=max(0.0, cap.rdp_budget - rdp_all),
        basic_epsilon_spent=done.basic_epsilon, basic_delta_spent=done.basic_delta,
        basic_epsilon_reserved=held.basic_epsilon, basic_delta_reserved=held.basic_delta,
    )


__all__ = ["BudgetStatus", "Entry", "FilterCap", "RunRow", "Spend", "check_curve", "check_eps_delta", "check_share",
           "choose_order", "rdp_at", "rdp_budget", "refusal", "smallest_share", "summarize"]
