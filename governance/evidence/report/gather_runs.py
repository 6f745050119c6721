"""Report sections about training runs: runs, fairness per group, model cards, empirical audits, budgets.

What a run may show follows GUIDE 3: no training loss, per-group figures as stored
(groups under the minimum size read "< N", never a number), the held-out curve only
where the split was declared public, and the model card with the fields of the model
type that was trained (an MLP's hidden layers are not a logistic regression's).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from governance.evidence.report.gather_data import datasets_in
from governance.evidence.report.scope import Scope
from governance.storage.store import Run
from privacy.errors import PrivgovError
from training.model_card import TYPE_ONLY_FIELDS  # cards stored before it applied still carry them

if TYPE_CHECKING:  # pragma: no cover
    from privacy.ledger import BudgetLedger, BudgetStatus

# Card sections the report renders as key/value tables, in this order (features are summarised).
CARD_SECTIONS = ("model", "privacy", "data", "metrics", "fairness", "training", "budget")
_FAIR_FIGURES = ("accuracy", "recall", "positive_rate")


@dataclass(frozen=True)
class RunRow:
    run_uid: str
    pipeline: str
    dataset: str
    principal: str
    purpose: str
    status: str
    epsilon: float | None
    delta: float | None
    accuracy: float | None
    roc_auc: float | None
    erased_source: bool
    started: dt.datetime
    reason: str | None


@dataclass(frozen=True)
class GroupRow:
    attribute: str
    group: str
    n: str
    figures: list[str]  # accuracy, TPR, positive rate: "0.8100" or the suppression words "< 20"
    suppressed: bool


@dataclass(frozen=True)
class Fairness:
    run_uid: str
    min_group_size: Any
    groups: list[GroupRow]
    differences: list[tuple[str, str, str]]  # (attribute, demographic parity diff, equalized odds diff)


@dataclass(frozen=True)
class ModelCard:
    run_uid: str
    model_type: str
    epsilon_covers: str | None
    covers_stored_only: bool
    sections: list[tuple[str, list[tuple[str, str]]]]


@dataclass(frozen=True)
class AuditRow:
    run_uid: str
    kind: str  # black-box one-run | white-box | membership inference | not audited
    audited: str
    claimed_epsilon: str
    lower_bound: str
    confidence: str
    detail: str
    verdict: str  # ok | bad | ""


@dataclass(frozen=True)
class BudgetRow:
    run_uid: str
    dataset: str
    before: str
    after: str
    run_epsilon: str
    run_delta: str
    order: str
    ledger_delta: str


@dataclass
class DatasetBudget:
    """A dataset's cap and its ledger runs over time (for the plot and the table)."""

    dataset: str
    status: "BudgetStatus"
    points: list[tuple[dt.datetime, float]] = field(default_factory=list)  # (committed at, share of filter budget)


def runs_in(session: Session, scope: Scope) -> list[Run]:
    return [r for r in session.query(Run).order_by(Run.id)
            if scope.has_dataset(r.dataset_name) and scope.is_after(r.started_at)]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def run_rows(runs: list[Run]) -> list[RunRow]:
    out = []
    for r in runs:
        m = (r.metrics_json or {}).get("metrics") or {}
        out.append(RunRow(run_uid=r.run_uid, pipeline=r.pipeline, dataset=r.dataset_name, principal=r.principal,
                          purpose=r.purpose, status=r.status, epsilon=r.epsilon, delta=r.delta,
                          accuracy=_num(m.get("accuracy")), roc_auc=_num(m.get("roc_auc")),
                          erased_source=bool(r.affected_by_erasure), started=r.started_at, reason=r.reason))
    return out


def _figure(value: Any) -> str:
    """A number to 4 places, or the suppression words ("< 20") exactly as stored."""
    if isinstance(value, bool) or value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, (int, float)) else str(value)


def fairness(runs: list[Run]) -> list[Fairness]:
    out = []
    for r in runs:
        per_group = (r.metrics_json or {}).get("per_group") or {}
        groups, diffs, min_size = [], [], None
        for col, by in per_group.items():
            if not isinstance(by, dict):
                continue
            min_size = by.get("min_group_size", min_size)
            diffs.append((col, _figure(by.get("demographic_parity_difference")),
                          _figure(by.get("equalized_odds_difference"))))
            for group, gm in (by.get("groups") or {}).items():
                if isinstance(gm, dict):
                    shown = [_figure(gm.get(k)) for k in _FAIR_FIGURES]
                    n = gm.get("n")
                    groups.append(GroupRow(attribute=str(col), group=str(group),
                                           n=f"{int(count)}" if (count := _num(n)) is not None else str(n or ""),
                                           figures=shown, suppressed=isinstance(n, str)))
        if groups:
            out.append(Fairness(run_uid=r.run_uid, min_group_size=min_size, groups=groups, differences=diffs))
    return out


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_value(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def card_fields(section: str, body: Any, model_type: str) -> list[tuple[str, str]]:
    """One card section as (field, value) rows, without the fields another model type would have."""
    if not isinstance(body, dict):
        return [(section, _value(body))]
    rows = []
    for key, val in body.items():
        if section == "model" and key in TYPE_ONLY_FIELDS and model_type not in TYPE_ONLY_FIELDS[key]:
            continue
        if section == "data" and key == "features" and isinstance(val, dict):
            val = {k: val.get(k) for k in ("numeric", "categorical", "statistics") if k in val}
        rows.append((str(key), _value(val)[:600]))
    return rows


def model_cards(runs: list[Run]) -> list[ModelCard]:
    out = []
    for r in runs:
        card = r.model_card_json or {}
        if not card:
            continue
        model_type = str((card.get("model") or {}).get("name", "unknown"))
        covers = (card.get("privacy") or {}).get("epsilon_covers")
        sections = [(name, card_fields(name, card[name], model_type)) for name in CARD_SECTIONS if card.get(name)]
        if card.get("code_version"):
            sections.append(("provenance", [("code_version", str(card["code_version"]))]))
        out.append(ModelCard(run_uid=r.run_uid, model_type=model_type, epsilon_covers=covers,
                             covers_stored_only=bool(covers and str(covers).startswith("stored version")),
                             sections=sections))
    return out


def _f(v: Any, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def audit_rows(runs: list[Run]) -> list[AuditRow]:
    """Black-box (MIA, one-run canaries) and white-box (gradient canaries) audits recorded on each card."""
    out = []
    for r in runs:
        a = (r.model_card_json or {}).get("audit") or {}
        if not a:
            if r.model_blob_hash:
                out.append(AuditRow(r.run_uid, "not audited", "", _f(r.epsilon, ".3f"), "", "", "", ""))
            continue
        when = str(a.get("audited_at", ""))
        for key, kind in (("one_run", "black-box one-run canaries"), ("whitebox", "white-box gradient canaries")):
            one = a.get(key)
            if isinstance(one, dict):
                detail = (f"{one.get('included')}/{one.get('canaries')} canaries included" if key == "one_run"
                          else f"{one.get('canaries')} canaries, k+={one.get('k_pos')}, k-={one.get('k_neg')}, "
                               f"{one.get('correct')}/{one.get('guesses')} correct")
                out.append(AuditRow(r.run_uid, kind, when, _f(one.get("claimed_epsilon", a.get("claimed_epsilon")), ".3f"),
                                    _f(one.get("epsilon_lower_bound"), ".3f"), _f(one.get("confidence"), ".0%"),
                                    detail, "ok" if one.get("passed") else "bad"))
        mia = a.get("membership_inference")
        if isinstance(mia, dict):
            out.append(AuditRow(r.run_uid, "membership inference (black-box)", when, _f(a.get("claimed_epsilon"), ".3f"),
                                "", "", f"{mia.get('attack', 'attack')}: AUC {_f(mia.get('auc'), '.3f')}, "
                                        f"TPR at 1% FPR {_f(mia.get('tpr_at_1pct_fpr'), '.3f')}", ""))
    return out


def _budget_row(uid: str, dataset: str, b: dict[str, Any]) -> BudgetRow:
    return BudgetRow(uid, dataset, _f(b.get("ledger_epsilon_before"), ".4f"), _f(b.get("ledger_epsilon_after"), ".4f"),
                     _f(b.get("run_epsilon"), ".4f"), _f(b.get("run_delta"), "g"), _f(b.get("composition_order"), "g"),
                     _f(b.get("ledger_delta"), "g"))


def budget_rows(runs: list[Run]) -> list[BudgetRow]:
    """Budget lines from each card: the training run's and its audit retrainings' (each charged as its own run):
    ledger before/after, the run's own (ε, δ), the order."""
    rows = []
    for r in runs:
        card = r.model_card_json or {}
        if not card:
            continue
        b = card.get("budget") or {}
        if b:
            rows.append(_budget_row(r.run_uid, r.dataset_name, b))
        else:
            rows.append(BudgetRow(r.run_uid, r.dataset_name, "not recorded", "not recorded", _f(r.epsilon, ".4f"),
                                  _f(r.delta, "g"), "", ""))
        for key in ("one_run", "whitebox"):
            audit = (card.get("audit") or {}).get(key)
            if isinstance(audit, dict) and isinstance(audit.get("budget"), dict):
                rows.append(_budget_row(str(audit.get("audit_run_uid") or f"{r.run_uid} (audit)"), r.dataset_name,
                                        audit["budget"]))
    return rows


def dataset_budgets(session: Session, ledger: "BudgetLedger", scope: Scope) -> list[DatasetBudget]:
    """Each dataset's ledger status and its committed runs over time as shares of the filter's RDP budget."""
    out = []
    for ds in datasets_in(session, scope):
        try:
            st = ledger.status(ds.lineage_id, ds.privacy_unit or "row")
        except PrivgovError:  # no cap set for this lineage yet
            continue
        if not (st.runs or st.epsilon_cap):
            continue
        item, used = DatasetBudget(dataset=ds.name, status=st), 0.0
        committed = sorted(((r.committed_at, r.rdp_charge or 0.0) for r in st.runs if r.committed_at is not None),
                           key=lambda p: p[0])
        for when, charge in committed:
            used += charge / max(st.rdp_budget, 1e-12)
            item.points.append((when, used))
        out.append(item)
    return out
