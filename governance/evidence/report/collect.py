"""Gather every section of the report into one typed value, in one read transaction.

Why one place: the sections must describe the same moment of the workspace (a run that
commits while the report is built must not appear in one table and not in the next),
and the renderer must get plain data, with no database or workspace to reach back into.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from governance.evidence.audit import AuditEvent
from governance.evidence.report import gather_access as acc
from governance.evidence.report import gather_data as data
from governance.evidence.report import gather_runs as gr
from governance.evidence.report.gather_keys import KeyStatus, key_status
from governance.evidence.report.lineage import LineageGraph, lineage_graph
from governance.evidence.report.plots import Plot, budget_plot, curve_plot, quality_plot
from governance.evidence.report.scope import Scope
from governance.storage.store import utcnow

if TYPE_CHECKING:  # pragma: no cover
    from governance.workspace import Workspace

MAX_DECISIONS = 200


@dataclass(frozen=True)
class Integrity:
    ok: bool
    events: int
    checkpoints: int
    problems: list[str]
    notes: list[str]
    head_seq: int | None
    head_hash: str | None


@dataclass(frozen=True)
class Decision:
    seq: int
    time: str
    principal: str
    action: str
    resource: str | None
    purpose: str | None
    allowed: bool
    reason: str | None


@dataclass
class ReportData:
    workspace: str
    generated: str
    scope: str
    integrity: Integrity
    processing: list[acc.ProcessingEntry] = field(default_factory=list)
    access: acc.AccessReview = field(default_factory=acc.AccessReview)
    decisions: list[Decision] = field(default_factory=list)
    datasets: list[data.DatasetRow] = field(default_factory=list)
    versions: list[data.VersionRow] = field(default_factory=list)
    lineage: LineageGraph = field(default_factory=LineageGraph)
    quality: list[data.QualityRecord] = field(default_factory=list)
    cleaning: list[data.CleaningRow] = field(default_factory=list)
    deid: list[data.DeidRow] = field(default_factory=list)
    pii: list[data.PiiRow] = field(default_factory=list)
    keys: KeyStatus = field(default_factory=KeyStatus)
    runs: list[gr.RunRow] = field(default_factory=list)
    fairness: list[gr.Fairness] = field(default_factory=list)
    cards: list[gr.ModelCard] = field(default_factory=list)
    audits: list[gr.AuditRow] = field(default_factory=list)
    budgets: list[gr.DatasetBudget] = field(default_factory=list)
    budget_runs: list[gr.BudgetRow] = field(default_factory=list)
    plots: dict[str, Plot] = field(default_factory=dict)


def integrity(ws: "Workspace") -> Integrity:
    """The whole chain, verified as `privgov audit verify` does (public key only), whatever the scope."""
    from governance.evidence.verify import verify_workspace

    rep = verify_workspace(ws)
    with ws.session() as s:
        head = s.query(AuditEvent).order_by(AuditEvent.seq.desc()).first()
    return Integrity(ok=bool(rep.ok), events=int(rep.events), checkpoints=int(rep.checkpoints),
                     problems=list(rep.problems), notes=list(rep.notes),
                     head_seq=head.seq if head else None, head_hash=head.hash if head else None)


def decisions(session: Session, scope: Scope) -> list[Decision]:
    q = session.query(AuditEvent).filter(AuditEvent.decision.in_(["allow", "deny"]))
    if scope.dataset:
        q = q.filter(AuditEvent.resource == scope.dataset)
    rows = [e for e in q.order_by(AuditEvent.seq.desc()) if scope.is_after(e.ts)][:MAX_DECISIONS]
    return [Decision(e.seq, str(e.ts)[:19], e.principal, e.action, e.resource, e.purpose, e.decision == "allow",
                     e.reason) for e in rows]


def collect(ws: "Workspace", scope: Scope) -> ReportData:
    report = ReportData(workspace=str(ws.root), generated=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
                        scope=scope.describe(), integrity=integrity(ws))
    with ws.session() as s:
        report.processing = acc.processing_records(s, scope)
        report.access = acc.access_review(s, scope)
        report.decisions = decisions(s, scope)
        report.datasets = data.dataset_rows(s, scope)
        report.versions = data.version_rows(s, scope)
        report.lineage = lineage_graph(s, scope)
        report.quality = data.quality_records(s, scope)
        report.cleaning = data.cleaning_rows(s, scope)
        report.deid = data.deid_rows(s, scope)
        report.pii = data.pii_rows(s, scope)
        report.keys = key_status(s, ws.keyring, scope)
        runs = gr.runs_in(s, scope)
        report.runs = gr.run_rows(runs)
        report.fairness = gr.fairness(runs)
        report.cards = gr.model_cards(runs)
        report.audits = gr.audit_rows(runs)
        report.budget_runs = gr.budget_rows(runs)
        report.budgets = gr.dataset_budgets(s, ws.ledger, scope)
        for plot in (budget_plot(report.budgets), quality_plot(report.quality), curve_plot(runs)):
            if plot is not None:
                report.plots[plot.key] = plot
    return report
