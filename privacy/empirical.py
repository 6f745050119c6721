"""Statistics for empirical privacy audits (pure functions; no training here).

Why: an accountant's epsilon is a proof about the algorithm as specified; an
empirical audit checks the implementation (sampling, clipping, noise) by
attacking the trained model. Two tools:

* `membership_inference` - the loss-threshold attack summary (AUC, TPR at a
  low FPR). Descriptive: it is not a lower bound on epsilon.
* `one_run_lower_bound` - the one-run audit of Steinke, Nasr & Jagielski,
  "Privacy Auditing with One (1) Training Run" (NeurIPS 2023,
  arXiv:2305.08846). m canaries are each included in training independently
  with probability 1/2; the auditor guesses "included" for the k+ highest
  scores, "excluded" for the k- lowest, and abstains on the rest. Under
  (eps, delta)-DP the number of correct guesses is stochastically dominated as
  in their Theorem 5.2 / Corollary 5.4, giving the p-value

      p(eps) = P[Binom(r, q) >= v] + 2*m*delta * max_{1<=i<=v} P[v-i <= Binom(r, q) < v] / i,
      q = e^eps / (1 + e^eps)

  (r guesses, v correct). The reported bound is the largest eps whose
  p-value is below 1 - confidence (their Appendix D `get_eps_audit`,
  found here by bracketing + bisection): with the stated confidence the
  trained model is *not* (eps, delta)-DP for any smaller eps. An audit
  "fails" (finds a bug) when this bound exceeds the accounted epsilon.

The caller orchestrates training and computes the scores (higher = more
likely included): minus the loss on the final model for canary records
(`training.canary_audit`), or the summed updates at each gradient canary's
coordinate over all iterates (`training.whitebox_audit`). `one_run_audit`
searches a pre-declared set of (k+, k-) with a Bonferroni correction.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privacy.errors import InputError


@dataclass(frozen=True)
class MIAResult:
    """Loss-threshold membership inference summary (higher score = member)."""

    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_0_1pct_fpr: float
    best_balanced_accuracy: float
    advantage: float  # max over thresholds of TPR - FPR
    n_members: int
    n_nonmembers: int


@dataclass(frozen=True)
class OneRunAudit:
    """Result of `one_run_audit`: the bound and the (k+, k-) the search chose.

    `candidates` is the number of pre-declared (k+, k-) pairs searched and
    `correction` how the confidence was split across them.
    """

    epsilon_lower: float
    k_pos: int
    k_neg: int
    guesses: int
    correct: int
    canaries: int
    delta: float
    confidence: float
    candidates: int = 1
    correction: str = "none"


def _as_scores(values: Sequence[float] | np.ndarray, field: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise InputError(f"{field}: expected at least one score")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{field}: expected finite scores (no NaN/inf)")
    return arr


def _tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float) -> float:
    """TPR of the strictest threshold whose FPR is <= fpr (ties counted against us)."""
    allowed = int(math.floor(fpr * nonmembers.size + 1e-9))
    desc = np.sort(nonmembers)[::-1]
    if allowed >= desc.size:
        return 1.0
    threshold = desc[allowed]  # predict member iff score > threshold
    return float(np.mean(members > threshold))


def membership_inference(
    member_scores: Sequence[float] | np.ndarray,
    nonmember_scores: Sequence[float] | np.ndarray,
) -> MIAResult:
    """Summarise a threshold attack: higher score = more likely a member.

    AUC is the Mann-Whitney statistic from mid-ranks (ties count 1/2), so no
    sklearn is needed at runtime.
    """
    mem = _as_scores(member_scores, "member_scores")
    non = _as_scores(nonmember_scores, "nonmember_scores")
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([mem, non]))  # average ranks for ties
    n1, n0 = mem.size, non.size
    auc = (ranks[:n1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0)

    # ROC sweep over all distinct thresholds for advantage / balanced accuracy.
    thresholds = np.unique(np.concatenate([mem, non]))
    mem_sorted, non_sorted = np.sort(mem), np.sort(non)
    tpr = 1.0 - np.searchsorted(mem_sorted, thresholds, side="left") / n1  # P[score >= t]
    fpr = 1.0 - np.searchsorted(non_sorted, thresholds, side="left") / n0
    adv = float(max(0.0, np.max(tpr - fpr)))
    return MIAResult(
        auc=float(auc),
        tpr_at_1pct_fpr=_tpr_at_fpr(mem, non, 0.01),
        tpr_at_0_1pct_fpr=_tpr_at_fpr(mem, non, 0.001),
        best_balanced_accuracy=0.5 + adv / 2.0,
        advantage=adv,
        n_members=int(n1),
        n_nonmembers=int(n0),
    )


def one_run_p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P-value of >= v correct out of r guesses (m canaries) if the model were
    (epsilon, delta)-DP: Steinke, Nasr & Jagielski 2023, Corollary 5.4."""
    from scipy.stats import binom

    q = 1.0 / (1.0 + math.exp(-epsilon))
    tail = float(binom.sf(v - 1, r, q))  # P[Binom(r, q) >= v]
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    i = np.arange(1, v + 1)
    # P[v - i <= Binom < v] = cdf(v - 1) - cdf(v - i - 1)
    window = binom.cdf(v - 1, r, q) - binom.cdf(v - i - 1, r, q)
    alpha = float(np.max(window / i))
    return min(tail + alpha * delta * 2.0 * m, 1.0)


def epsilon_lower_bound(
    m: int, r: int, v: int, delta: float, confidence: float = 0.95
) -> float:
    """Largest eps rejected at level 1 - confidence by `one_run_p_value`.

    Bisection (p grows with eps): keep p(lo) < level <= p(hi). Returns 0 when
    even eps = 0 cannot be rejected (the audit found no evidence of leakage).
    """
    for name, val in (("m", m), ("r", r), ("v", v)):
        if int(val) != val or val < 0:
            raise InputError(f"{name}: expected a non-negative integer, got {val!r}")
    m, r, v = int(m), int(r), int(v)
    if not (v <= r <= m) or m < 1:
        raise InputError(f"guesses: need 0 <= correct <= guesses <= canaries, got v={v}, r={r}, m={m}")
    if not (0.0 <= delta < 1.0):
        raise InputError(f"delta: expected 0 <= delta < 1, got {delta!r}")
    if not (0.0 < confidence < 1.0):
        raise InputError(f"confidence: expected 0 < confidence < 1, got {confidence!r}")
    level = 1.0 - confidence
    if r == 0 or one_run_p_value(m, r, v, 0.0, delta) >= level:
        return 0.0
    lo, hi = 0.0, 1.0
    while one_run_p_value(m, r, v, hi, delta) < level:
        lo, hi = hi, hi * 2.0
        if hi > 1e3:
            return lo
    for _ in range(40):
        mid = (lo + hi) / 2.0
        if one_run_p_value(m, r, v, mid, delta) < level:
            lo = mid
        else:
            hi = mid
    return lo


def _guesses(scores: np.ndarray, included: np.ndarray, k_pos: int, k_neg: int) -> tuple[int, int]:
    order = np.argsort(-scores, kind="stable")  # highest first
    top = order[:k_pos]
    bottom = order[scores.size - k_neg:] if k_neg else order[:0]
    correct = int(included[top].sum()) + int((~included[bottom]).sum())
    return k_pos + k_neg, correct


def _check_audit_inputs(scores: Sequence[float] | np.ndarray,
                        included: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = _as_scores(scores, "scores")
    inc = np.asarray(included).ravel()
    if inc.dtype != bool:
        if not np.isin(inc, (0, 1)).all():
            raise InputError("included: expected booleans (was each canary in training?)")
        inc = inc.astype(bool)
    if inc.size != s.size:
        raise InputError(f"included: expected {s.size} flags (one per canary), got {inc.size}")
    return s, inc


def one_run_lower_bound(
    scores: Sequence[float] | np.ndarray,
    included: Sequence[bool] | np.ndarray,
    k_pos: int,
    k_neg: int,
    delta: float,
    confidence: float = 0.95,
) -> float:
    """One-run audit lower bound on epsilon (Steinke, Nasr & Jagielski 2023).

    `scores[i]` is the attack score of canary i (higher = guessed member),
    `included[i]` whether it was trained on (each with probability 1/2, chosen
    before training). k_pos/k_neg must be fixed before looking at the scores;
    to search over several, use `one_run_audit` (Bonferroni-corrected).
    """
    s, inc = _check_audit_inputs(scores, included)
    m = s.size
    for name, k in (("k_pos", k_pos), ("k_neg", k_neg)):
        if int(k) != k or k < 0:
            raise InputError(f"{name}: expected a non-negative integer, got {k!r}")
    if k_pos + k_neg > m:
        raise InputError(f"k_pos + k_neg: expected at most {m} (the number of canaries), got {k_pos + k_neg}")
    r, v = _guesses(s, inc, int(k_pos), int(k_neg))
    return epsilon_lower_bound(m, r, v, delta, confidence)


DEFAULT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def choose_k(m: int, fractions: Sequence[float] = DEFAULT_FRACTIONS,
             one_sided: bool = True) -> list[tuple[int, int]]:
    """The pre-declared (k+, k-) candidates for m canaries, fixed before any score is seen.

    For each fraction f: f*m guesses split evenly (k+ = k- = f*m/2), and, with
    `one_sided`, f*m "included" guesses only (k- = 0). Few guesses win when
    the attack is confident only at the extremes, many when it is weak but
    broad; one-sided guesses win when inclusion raises a score much more
    clearly than exclusion lowers it (a canary that was included but never
    sampled looks excluded). Duplicates are dropped; the order is fixed.
    """
    if int(m) != m or m < 2:
        raise InputError(f"m: expected at least 2 canaries, got {m!r}")
    out: list[tuple[int, int]] = []
    for f in fractions:
        k = max(1, int(round(m * f / 2)))
        if 2 * k <= m and (k, k) not in out:
            out.append((k, k))
    if one_sided:
        for f in fractions:
            k = max(1, int(round(m * f)))
            if k <= m and (k, 0) not in out:
                out.append((k, 0))
    return out


def one_run_audit(
    scores: Sequence[float] | np.ndarray,
    included: Sequence[bool] | np.ndarray,
    delta: float,
    confidence: float = 0.95,
    k_grid: Sequence[tuple[int, int]] | None = None,
) -> OneRunAudit:
    """Search a pre-declared set of (k+, k-) and report the best bound, still valid at `confidence`.

    Correction: Bonferroni. Every candidate is tested at level
    (1 - confidence) / len(grid), so the chance that *any* candidate's bound
    exceeds the true epsilon is at most 1 - confidence, and reporting the
    largest of them is valid. The grid must be fixed before the scores are
    seen (`choose_k(m)` by default). The reported k is the search's result:
    the candidate with the largest bound; when no candidate rejects even
    eps = 0, the one whose guesses are the least likely under eps = 0 (the
    strongest, though insufficient, evidence), so "k" never defaults to the
    first entry of the grid.
    """
    s, inc = _check_audit_inputs(scores, included)
    m = s.size
    grid = list(k_grid) if k_grid is not None else choose_k(m)
    if not grid:
        raise InputError("k_grid: expected at least one (k_pos, k_neg) pair")
    per_test = 1.0 - (1.0 - confidence) / len(grid)
    best: tuple[float, float] | None = None  # (bound, -p-value at eps=0): larger is better
    chosen: OneRunAudit | None = None
    for k_pos, k_neg in grid:
        if int(k_pos) != k_pos or int(k_neg) != k_neg or k_pos < 0 or k_neg < 0 or k_pos + k_neg == 0:
            raise InputError(f"k_grid: ({k_pos}, {k_neg}) is not a pair of non-negative guess counts")
        if k_pos + k_neg > m:
            raise InputError(f"k_grid: ({k_pos}, {k_neg}) asks for more guesses than {m} canaries")
        r, v = _guesses(s, inc, int(k_pos), int(k_neg))
        eps = epsilon_lower_bound(m, r, v, delta, per_test)
        key = (eps, -one_run_p_value(m, r, v, 0.0, delta))
        if best is None or key > best:
            best = key
            chosen = OneRunAudit(eps, int(k_pos), int(k_neg), r, v, m, float(delta), confidence,
                                 candidates=len(grid), correction="bonferroni" if len(grid) > 1 else "none")
    assert chosen is not None
    return chosen


__all__ = [
    "DEFAULT_FRACTIONS",
    "MIAResult",
    "OneRunAudit",
    "choose_k",
    "epsilon_lower_bound",
    "membership_inference",
    "one_run_audit",
    "one_run_lower_bound",
    "one_run_p_value",
]
