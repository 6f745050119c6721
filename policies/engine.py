"""The decision function: ``decide(request, policy) -> Decision``. Pure, no I/O.

Why this shape: every data access in privgov asks this function first and the
answer is audited, so it must be (a) obviously correct — deny by default, an
explicit deny beats any allow, no purpose means no data access — and (b) cheap
enough to call per request (target: 100k decisions/s on one core). The policy
is compiled once into an index keyed by ``(action, role)``; the compiled form is
cached on the (immutable) policy object.

Precedence, in order:
1. unknown action → deny;
2. any matching deny rule (by role, by principal, or role ``*``) → deny;
3. no purpose → deny;
4. the first grant in file order that matches one of the principal's roles,
   the action, the dataset (name/glob or tag), the purpose and is not expired
   → allow with that grant's obligations (masks, row filter, ε caps);
5. otherwise deny, with the most specific reason (expired / wrong purpose / none).

ε caps in the obligations are the minimum of the grant's cap, the dataset's
budget and the principal's budget, whichever are set.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from policies.schema import ACTIONS, Condition, DenyRule, Grant, Policy, _utc_naive

_TAGS_NONE: frozenset[str] = frozenset()


@dataclass(slots=True)
class Request:
    principal: str
    roles: list[str]
    action: str
    dataset: str
    tags: list[str]
    purpose: str | None
    now: dt.datetime


@dataclass(frozen=True, slots=True)
class Obligations:
    """What the caller must enforce when allowed. ``row_filter`` is canonical
    JSON (a list of ``{column, op, value}`` conditions, AND-ed); apply it with
    :func:`row_filter_mask`, show it with :func:`describe_row_filter`."""

    column_masks: dict[str, str] = field(default_factory=dict)
    row_filter: str | None = None
    epsilon_cap: float | None = None
    delta_cap: float | None = None


NO_OBLIGATIONS = Obligations()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    obligations: Obligations
    rule: str | None


# --------------------------------------------------------------------------- compiled form


class _Target:
    """Dataset matcher: exact names, globs, tags (any one). Memoizes glob results."""

    __slots__ = ("names", "globs", "tags", "any", "_memo")

    def __init__(self, datasets: Iterable[str], tags: Iterable[str]) -> None:
        datasets = list(datasets)
        self.any = "*" in datasets
        self.names = frozenset(d for d in datasets if not _is_glob(d))
        self.globs = tuple(re.compile(fnmatch.translate(d)) for d in datasets if _is_glob(d) and d != "*")
        self.tags = frozenset(tags)
        self._memo: dict[str, bool] = {}

    def matches(self, dataset: str, tags: Iterable[str]) -> bool:
        if self.any or dataset in self.names:
            return True
        if self.globs:
            hit = self._memo.get(dataset)
            if hit is None:
                hit = any(g.match(dataset) for g in self.globs)
                if len(self._memo) > 65536:
                    self._memo.clear()
                self._memo[dataset] = hit
            if hit:
                return True
        return bool(self.tags) and not self.tags.isdisjoint(tags)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@dataclass(slots=True)
class _CGrant:
    id: str
    order: int
    purposes: frozenset[str]
    expires: dt.datetime | None
    target: _Target
    masks: dict[str, str]
    row_filter: str | None
    epsilon_cap: float | None
    delta_cap: float | None


@dataclass(slots=True)
class _CDeny:
    id: str
    purposes: frozenset[str]
    target: _Target
    reason: str


@dataclass
class CompiledPolicy:
    grants: dict[tuple[str, str], tuple[_CGrant, ...]]
    deny_roles: dict[tuple[str, str], tuple[_CDeny, ...]]
    deny_principals: dict[tuple[str, str], tuple[_CDeny, ...]]
    dataset_budgets: list[tuple[_Target, float, float]]
    principal_budgets: dict[str, tuple[float, float]]
    _budget_memo: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    def dataset_budget(self, dataset: str) -> tuple[float, float] | None:
        if dataset in self._budget_memo:
            return self._budget_memo[dataset]
        found = None
        for target, eps, delta in self.dataset_budgets:  # exact names are listed first
            if target.matches(dataset, _TAGS_NONE):
                found = (eps, delta)
                break
        if len(self._budget_memo) > 65536:
            self._budget_memo.clear()
        self._budget_memo[dataset] = found
        return found


def canonical_row_filter(rf: Condition | list[Condition] | None) -> str | None:
    if rf is None:
        return None
    conds = rf if isinstance(rf, list) else [rf]
    return json.dumps([c.model_dump() for c in conds], sort_keys=True, separators=(",", ":"))


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Index the policy by (action, role); cached on the policy object."""
    cached = policy._compiled
    if isinstance(cached, CompiledPolicy):
        return cached
    grants: dict[tuple[str, str], list[_CGrant]] = {}
    for order, g in enumerate(policy.grants):
        cg = _compile_grant(g, order)
        for action in dict.fromkeys(g.actions):
            for role in dict.fromkeys(g.roles):
                grants.setdefault((action, role), []).append(cg)
    deny_roles: dict[tuple[str, str], list[_CDeny]] = {}
    deny_principals: dict[tuple[str, str], list[_CDeny]] = {}
    for d in policy.deny:
        cd = _compile_deny(d)
        actions = ACTIONS if "*" in d.actions else tuple(dict.fromkeys(d.actions))
        for denied in actions:
            for role in dict.fromkeys(d.roles):
                deny_roles.setdefault((denied, role), []).append(cd)
            for name in dict.fromkeys(d.principals):
                deny_principals.setdefault((denied, name), []).append(cd)
    budgets = sorted(policy.budgets.datasets.items(), key=lambda kv: _is_glob(kv[0]))  # stable: exact first
    compiled = CompiledPolicy(
        grants={k: tuple(v) for k, v in grants.items()},
        deny_roles={k: tuple(v) for k, v in deny_roles.items()},
        deny_principals={k: tuple(v) for k, v in deny_principals.items()},
        dataset_budgets=[(_Target([pat], ()), b.epsilon, b.delta) for pat, b in budgets],
        principal_budgets={n: (b.epsilon, b.delta) for n, b in policy.budgets.principals.items()},
    )
    policy._compiled = compiled
    return compiled


def _compile_grant(g: Grant, order: int) -> _CGrant:
    return _CGrant(
        id=g.id, order=order, purposes=frozenset(g.purposes),
        expires=None if g.expires is None else _utc_naive(g.expires),
        target=_Target(g.datasets, g.tags), masks=dict(g.masks),
        row_filter=canonical_row_filter(g.row_filter), epsilon_cap=g.epsilon_cap, delta_cap=g.delta_cap,
    )


def _compile_deny(d: DenyRule) -> _CDeny:
    return _CDeny(id=d.id, purposes=frozenset(d.purposes), target=_Target(d.datasets, d.tags),
                  reason=d.reason or "explicit deny")


# --------------------------------------------------------------------------- decide


def _deny(reason: str, rule: str | None = None) -> Decision:
    return Decision(False, reason, NO_OBLIGATIONS, rule)


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


def decide(request: Request, policy: Policy) -> Decision:
    """Allow or deny one request, with a reason and the obligations to enforce."""
    cp = policy._compiled or compile_policy(policy)
    action = request.action
    if action not in ACTIONS:
        return _deny(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    dataset, tags, purpose, roles = request.dataset, request.tags, request.purpose, request.roles

    # 2. explicit denies win over everything
    for d in cp.deny_principals.get((action, request.principal), ()):
        if (not d.purposes or purpose in d.purposes) and d.target.matches(dataset, tags):
            return _deny(f"denied by rule {d.id!r}: {d.reason}", d.id)
    for role in (*roles, "*"):
        for d in cp.deny_roles.get((action, role), ()):
            if (not d.purposes or purpose in d.purposes) and d.target.matches(dataset, tags):
                return _deny(f"denied by rule {d.id!r}: {d.reason}", d.id)

    # 3. purpose is required for every access
    if not purpose:
        return _deny(f"no purpose given: {action} on {dataset!r} requires a declared purpose")

    # 4. first matching grant in file order
    now = request.now
    if now.tzinfo is not None:
        now = _utc_naive(now)
    best: _CGrant | None = None
    best_role = ""
    wrong_purpose: list[str] = []
    expired: list[tuple[_CGrant, dt.datetime]] = []
    for role in roles:
        for g in cp.grants.get((action, role), ()):
            if best is not None and g.order >= best.order:
                break
            if not g.target.matches(dataset, tags):
                continue
            if purpose not in g.purposes:
                wrong_purpose.append(g.id)
                continue
            if g.expires is not None and now >= g.expires:
                expired.append((g, g.expires))
                continue
            best, best_role = g, role
            break
    if best is None:
        if expired:
            g, when = expired[0]
            return _deny(f"grant {g.id!r} expired at {when.isoformat()}", g.id)
        if wrong_purpose:
            return _deny(f"purpose {purpose!r} is not allowed for {action} on {dataset!r} "
                         f"by grant(s) {', '.join(sorted(set(wrong_purpose)))}", wrong_purpose[0])
        return _deny(f"no grant allows {action} on {dataset!r} for roles "
                     f"[{', '.join(roles)}] (deny by default)")

    eps, delta = best.epsilon_cap, best.delta_cap
    ds_budget = cp.dataset_budget(dataset) if cp.dataset_budgets else None
    if ds_budget is not None:
        eps, delta = _min(eps, ds_budget[0]), _min(delta, ds_budget[1])
    pr_budget = cp.principal_budgets.get(request.principal)
    if pr_budget is not None:
        eps, delta = _min(eps, pr_budget[0]), _min(delta, pr_budget[1])
    obligations = Obligations(dict(best.masks), best.row_filter, eps, delta)
    return Decision(True, f"allowed by grant {best.id!r} (role {best_role!r}, purpose {purpose!r})",
                    obligations, best.id)


def budget_for(policy: Policy, dataset: str) -> tuple[float, float] | None:
    """The dataset's (ε, δ) budget from ``budgets.datasets`` (exact name, then globs)."""
    return compile_policy(policy).dataset_budget(dataset)


def basic_share_for(policy: Policy, dataset: str) -> float:
    """The share of the dataset's budget set aside for basic-composition runs (0 when none)."""
    import fnmatch

    exact = policy.budgets.datasets.get(dataset)
    if exact is not None:
        return float(exact.basic_share)
    for pattern, b in policy.budgets.datasets.items():
        if fnmatch.fnmatchcase(dataset, pattern):
            return float(b.basic_share)
    return 0.0


def train_grants(policy: Policy, dataset: str, tags: Iterable[str] = ()) -> list[str]:
    """Ids of the grants that allow `train` on `dataset` (by name, glob or one of `tags`).

    Why: a policy that lets anyone train on a dataset must say who epsilon
    protects there (`privacy:`); binding checks this with the same matching the
    decisions use, so a grant by tag counts as much as one by name."""
    tags = tuple(tags)
    return [g.id for g in policy.grants
            if "train" in g.actions and _Target(g.datasets, g.tags).matches(dataset, tags)]


def principal_budget(policy: Policy, principal: str) -> tuple[float, float] | None:
    """The principal's (ε, δ) cap from ``budgets.principals``, if any."""
    return compile_policy(policy).principal_budgets.get(principal)


# --------------------------------------------------------------------------- row filters


def parse_row_filter(row_filter: str) -> list[Condition]:
    """Parse an obligations row filter back into conditions (validated, no eval)."""
    return [Condition.model_validate(c) for c in json.loads(row_filter)]


def describe_row_filter(row_filter: str | None) -> str:
    """Human-readable form for reports, e.g. ``age >= 18 AND site in ['a', 'b']``."""
    if not row_filter:
        return "(none)"
    parts = []
    for c in parse_row_filter(row_filter):
        parts.append(f"{c.column} {c.op}" if c.value is None else f"{c.column} {c.op} {c.value!r}")
    return " AND ".join(parts)


def row_filter_mask(row_filter: str | None, df: Any) -> Any:
    """Boolean pandas Series selecting the rows the filter keeps. Nulls never pass a
    comparison. A column the filter names but the frame lacks is an error, not a pass."""
    from privacy.errors import InputError

    if not row_filter:
        import pandas as pd

        return pd.Series(True, index=df.index, dtype=bool)
    mask = None
    for c in parse_row_filter(row_filter):
        if c.column not in df.columns:
            raise InputError(f"row filter: column {c.column!r} not in data (columns: {', '.join(map(str, df.columns))})")
        col = df[c.column]
        if c.op == "is_null":
            m = col.isna()
        elif c.op == "not_null":
            m = col.notna()
        elif c.op == "in":
            m = col.isin(c.value)
        elif c.op == "not_in":
            m = ~col.isin(c.value) & col.notna()
        else:
            try:
                m = {"==": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__,
                     ">": col.__gt__, ">=": col.__ge__}[c.op](c.value)
            except (TypeError, ValueError, NotImplementedError) as exc:
                raise InputError(
                    f"row filter: `{c.column} {c.op} {c.value!r}` cannot compare column {c.column!r} of type "
                    f"{col.dtype} with {type(c.value).__name__} (was the column generalized or re-typed?)"
                ) from exc
            m = m.fillna(False).astype(bool) & col.notna()
        mask = m if mask is None else (mask & m)
    return mask
