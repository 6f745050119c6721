"""Self-contained HTML report an auditor can open offline.

Why self-contained: reports get attached to tickets and audits; embedded PNG
plots and inline CSS mean nothing to fetch and nothing to lose. The report is
built from metadata only (versions, validations, audit events, ledger, runs): it
never decrypts data, so it can never leak a value.

What it shows of a training run follows GUIDE 3: no training loss (a noiseless
sum over private rows; old runs that stored one are not plotted either), the
held-out accuracy curve only where the pipeline declared the held-out split
public, per-group figures as stored (groups below the minimum size read
"< N"), and in words what the run's epsilon covers.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.storage import catalog
from governance.storage.store import Dataset, Run, ValidationRecord, utcnow

if TYPE_CHECKING:  # pragma: no cover
    from governance.workspace import Workspace

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1f24}
h1{font-size:1.6rem} h2{border-bottom:2px solid #dde;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ccd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f3f7} .ok{color:#137333;font-weight:600} .bad{color:#b3261e;font-weight:600}
.muted{color:#667} code{background:#f4f4f6;padding:0 .2rem} img{max-width:100%}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else _e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


class _Raw(str):
    """Already-escaped HTML."""


def _status(ok: bool | None) -> _Raw:
    if ok is None:
        return _Raw('<span class="muted">n/a</span>')
    return _Raw('<span class="ok">pass</span>' if ok else '<span class="bad">fail</span>')


# Per-epoch curves the report may plot: held-out accuracy (stored only when the
# held-out split is declared public). Never a training loss.
RELEASABLE_CURVES = ("test_accuracy",)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plots(validations: list[ValidationRecord], budgets: list[tuple[str, Any]], runs: list[Run]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[str] = []
    if validations:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        by_ds: dict[str, list[tuple[int, float]]] = {}
        for i, v in enumerate(validations):
            rate = 1.0 - (v.failed_expectations / v.evaluated if v.evaluated else 0.0)
            by_ds.setdefault(f"{v.dataset_name} ({v.stage})", []).append((i, rate))
        for label, pts in by_ds.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("validation # (chronological)")
        ax.set_ylabel("expectations passed")
        ax.set_title("Validation pass rate over versions")
        ax.legend(fontsize=7)
        out.append(_png(fig))
    if budgets:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        for name, st in budgets:
            used = [0.0]  # share of the Renyi filter's budget after each run (what the filter admits on)
            for r in st.runs:
                used.append(used[-1] + (r.rdp_charge or 0.0) / max(st.rdp_budget, 1e-12))
            ax.step(range(len(used)), used, where="post", label=f"{name}: RDP at α={st.order:g} / budget")
        ax.axhline(1.0, color="red", linewidth=0.8)
        ax.set_xlabel("runs")
        ax.set_ylabel("share of the filter budget")
        ax.set_title("Privacy budget spend (red: cap)")
        ax.legend(fontsize=7)
        out.append(_png(fig))
    hist_runs = [r for r in runs if any(k in h for h in (r.metrics_json or {}).get("history") or []
                                        for k in RELEASABLE_CURVES)]
    if hist_runs:
        r = hist_runs[-1]
        hist = r.metrics_json["history"]
        fig, ax = plt.subplots(figsize=(7, 2.8))
        keys = [k for k in RELEASABLE_CURVES if hist and k in hist[0]]
        for k in keys:
            ax.plot([h.get("epoch", i + 1) for i, h in enumerate(hist)], [h[k] for h in hist], marker=".", label=k)
        ax.set_xlabel("epoch")
        ax.set_title(f"Training curves, run {r.run_uid}")
        ax.legend(fontsize=7)
        out.append(_png(fig))
    return out


def build_report(ws: Workspace) -> str:
    from governance.evidence.audit import AuditEvent

    parts: list[str] = []
    with ws.session() as s:
        verify = ws.audit.verify(s)
        datasets = s.query(Dataset).order_by(Dataset.name).all()
        validations = s.query(ValidationRecord).order_by(ValidationRecord.id).all()
        runs = s.query(Run).order_by(Run.id).all()
        decisions = (
            s.query(AuditEvent)
            .filter(AuditEvent.decision.in_(["allow", "deny"]))
            .order_by(AuditEvent.seq.desc())
            .limit(200)
            .all()
        )
        ds_rows = []
        version_rows = []
        budgets = []
        for ds in datasets:
            vs = catalog.versions_of(s, ds)
            ds_rows.append([ds.name, ds.privacy_unit or "row", ", ".join(ds.tags or []), len(vs), ds.lineage_id[:12]])
            for v in vs:
                version_rows.append([
                    ds.name, v.version, v.kind, f"{v.row_count:,}", v.unit_count or "", _Raw(f"<code>{v.content_hash[:16]}</code>"),
                    v.data_key_id, v.validation_status, v.created_at.strftime("%Y-%m-%d %H:%M"),
                    _Raw('<span class="bad">erased ' + v.erased_at.strftime("%Y-%m-%d") + "</span>") if v.erased_at else "",
                ])
            try:
                st = ws.ledger.status(ds.lineage_id, ds.privacy_unit or "row")
                if st.runs or st.epsilon_cap:
                    budgets.append((ds.name, st))
            except Exception:  # no budget set for this lineage yet
                pass
        step_rows = []
        for ds in datasets:
            for v in catalog.versions_of(s, ds, kind="data")[-1:]:
                for st in v.steps_json or []:
                    counts = {k: val for k, val in st.items() if k not in ("step", "params", "stage", "column", "action")}
                    step_rows.append([ds.name, v.version, st.get("stage", "clean"), st.get("step") or st.get("action"),
                                      st.get("column", ""), _e(counts)[:300]])

    now = utcnow().strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<h1>privgov governance report</h1><p class='muted'>workspace <code>{_e(ws.root)}</code> · generated {now}</p>")
    parts.append("<h2>Audit log integrity</h2>")
    if verify.ok:
        parts.append(f"<p class='ok'>verified: {verify.events} events, hash chain intact, {verify.checkpoints} Ed25519-signed checkpoints valid.</p>")
    else:
        parts.append("<p class='bad'>VERIFICATION FAILED</p><ul>" + "".join(f"<li>{_e(p)}</li>" for p in verify.problems) + "</ul>")
    parts.append("<h2>Datasets</h2>" + _table(["dataset", "privacy unit", "tags", "versions", "lineage"], ds_rows))
    parts.append("<h2>Versions</h2><p class='muted'>Every version is encrypted at rest with its own data key (AES-256-GCM, STREAM); the content hash is of the plaintext Parquet.</p>")
    parts.append(_table(["dataset", "version", "kind", "rows", "units", "content sha256", "data key", "validation", "created", "erasure"], version_rows))
    parts.append("<h2>Cleaning and de-identification steps (latest version)</h2>")
    parts.append(_table(["dataset", "version", "stage", "step", "column", "counts"], step_rows))
    parts.append("<h2>Validation results</h2><p class='muted'>Failing rows are identified by row id only; values are never stored.</p>")
    parts.append(_table(
        ["#", "dataset", "stage", "suite", "result", "expectations", "failed", "failing rows", "time"],
        [[v.id, v.dataset_name, v.stage, v.suite_name, _status(v.success), v.evaluated, v.failed_expectations,
          f"{v.failing_rows:,}", v.created_at.strftime("%Y-%m-%d %H:%M")] for v in validations],
    ))
    parts.append("<h2>Policy decisions</h2>")
    parts.append(_table(
        ["seq", "time", "principal", "action", "resource", "purpose", "decision", "reason"],
        [[e.seq, str(e.ts)[:19], e.principal, e.action, e.resource, e.purpose,
          _Raw('<span class="ok">allow</span>' if e.decision == "allow" else '<span class="bad">deny</span>'), e.reason]
         for e in decisions],
    ))
    parts.append("<h2>Training runs</h2>")
    run_rows = []
    for r in runs:
        m = (r.metrics_json or {}).get("metrics", {})
        run_rows.append([
            r.run_uid, r.pipeline, r.dataset_name, r.version_id, r.principal, r.purpose, r.status,
            f"{r.epsilon:.3f}" if r.epsilon is not None else "", f"{r.delta:g}" if r.delta else "",
            f"{m['accuracy']:.4f}" if "accuracy" in m else "", f"{m['roc_auc']:.4f}" if "roc_auc" in m else "",
            _Raw('<span class="bad">trained on erased data</span>') if r.affected_by_erasure else "",
            (r.reason or "")[:120],
        ])
    parts.append(_table(["run", "pipeline", "dataset", "version id", "principal", "purpose", "status", "ε", "δ",
                         "accuracy", "ROC AUC", "erasure", "reason"], run_rows))
    for r in runs:
        groups = (r.metrics_json or {}).get("per_group") or {}
        if groups:
            rows = []
            for col, by in groups.items():
                if not isinstance(by, dict):
                    continue
                for group, gm in (by.get("groups") or {}).items():
                    if isinstance(gm, dict):
                        rows.append([col, group, gm.get("n", ""), *[_figure(gm.get(k))
                                                                    for k in ("accuracy", "recall", "positive_rate")]])
            parts.append(f"<h3>Fairness, run {_e(r.run_uid)}</h3>" + _table(["attribute", "group", "n", "accuracy", "TPR", "positive rate"], rows))
        card = r.model_card_json or {}
        if card:
            parts.append(f"<h3>Model card, run {_e(r.run_uid)}</h3>")
            covers = (card.get("privacy") or {}).get("epsilon_covers")
            if covers and covers.startswith("stored version"):
                parts.append(f"<p class='bad'>ε covers the stored version, not the raw file: {_e(covers)}. What "
                             "became of one row depended on counts or statistics of others, so adding one person "
                             "to the raw file can change several stored rows.</p>")
            elif covers:
                parts.append(f"<p class='muted'>ε covers: {_e(covers)}.</p>")
            parts.append(_table(["field", "value"], [[k, _e(v)[:400]] for k, v in card.items()]))
    parts.append("<h2>Empirical privacy audits</h2><p class='muted'>`privgov audit-model RUN`. Membership "
                 "inference is descriptive (AUC 0.5 = no signal). The one-run canary audit gives a lower bound ε̂ on "
                 "the ε the training really has, at the stated confidence; ε̂ above the claimed ε means a bug.</p>")
    parts.append(_table(["run", "audited", "claimed ε", "ε̂ lower bound", "confidence", "canaries", "verdict",
                         "MIA AUC", "MIA TPR @1% FPR"], _audit_rows(runs)))
    parts.append("<h2>Privacy budgets</h2>")
    parts.append(_table(
        ["dataset", "cap ε", "cap δ", "order α (fixed)", "RDP budget", "RDP spent", "RDP reserved",
         "admitted ε at α", "remaining ε", "runs"],
        [[n, f"{st.epsilon_cap:g}", f"{st.delta_cap:g}", f"{st.order:g}", f"{st.rdp_budget:.4f}", f"{st.rdp_spent:.4f}",
          f"{st.rdp_reserved:.4f}", f"{st.composed_epsilon:.4f}", f"{st.remaining:.4f}", len(st.runs)]
         for n, st in budgets],
    ))
    parts.append("<h3>Budget per run</h3><p class='muted'>Recorded when each run committed. Ledger ε is the "
                 "dataset's committed spend as its filter reports it (RDP at the order α fixed with the cap, "
                 "converted at the ledger's δ, plus any basic-composition share); the run's ε is that run alone, "
                 "from its accountant. The cap is the guarantee for all runs together.</p>")
    parts.append(_table(["run", "dataset", "ledger ε before", "ledger ε after", "run ε", "run δ", "order α",
                         "ledger δ"], _budget_rows(runs)))
    plots = _plots(validations, budgets, runs)
    if plots:
        parts.append("<h2>Plots</h2>" + "".join(plots))
    return f"<!doctype html><html><head><meta charset='utf-8'><title>privgov report</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>"


def _figure(value: Any) -> str:
    """A per-group figure: a number to 4 places, or the suppression words ("< 20") as stored."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float)):
        return f"{value:.4f}"
    return str(value)


def _budget_rows(runs: list[Any]) -> list[list[Any]]:
    """Each trained run's budget lines from its card (runs trained before they were recorded say so)."""
    rows = []
    for r in runs:
        card = r.model_card_json or {}
        if not card:
            continue
        b = card.get("budget") or {}
        if not b:
            rows.append([r.run_uid, r.dataset_name, "not recorded", "not recorded",
                         f"{r.epsilon:.4f}" if r.epsilon is not None else "", f"{r.delta:g}" if r.delta else "", "", ""])
            continue
        rows.append([r.run_uid, r.dataset_name, f"{b['ledger_epsilon_before']:.4f}", f"{b['ledger_epsilon_after']:.4f}",
                     f"{b['run_epsilon']:.4f}", f"{b['run_delta']:g}", f"{b['composition_order']:g}",
                     f"{b['ledger_delta']:g}"])
    return rows


def _audit_rows(runs: list[Any]) -> list[list[Any]]:
    rows = []
    for r in runs:
        a = (r.model_card_json or {}).get("audit") or {}
        if not a:
            if r.model_blob_hash:
                rows.append([r.run_uid, "not audited", f"{r.epsilon:.3f}" if r.epsilon is not None else "",
                             "", "", "", "", "", ""])
            continue
        one, mia = a.get("one_run") or {}, a.get("membership_inference") or {}
        verdict = ""
        if one:
            verdict = _Raw('<span class="ok">ε̂ ≤ ε</span>' if one.get("passed") else '<span class="bad">ε̂ &gt; ε: investigate</span>')
        rows.append([
            r.run_uid, a.get("audited_at", ""), f"{a.get('claimed_epsilon', float('nan')):.3f}",
            f"{one['epsilon_lower_bound']:.3f}" if one else "skipped", f"{one['confidence']:.0%}" if one else "",
            f"{one['included']}/{one['canaries']}" if one else "", verdict,
            f"{mia['auc']:.3f}" if "auc" in mia else "", f"{mia['tpr_at_1pct_fpr']:.3f}" if "tpr_at_1pct_fpr" in mia else "",
        ])
    return rows


def write_report(ws: Workspace, out: Path) -> Path:
    """Render and write atomically (a half-written report is never left behind)."""
    from governance.storage.atomic_write import write_text

    text = build_report(ws)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, text)
    return out
