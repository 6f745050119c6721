"""Plots embedded in the report as base64 PNG (matplotlib, Agg backend, imported only here).

Why PNG data URIs: the report is one offline file; an `<img src="data:...">` needs no
fetch and renders in any browser or ticket viewer. Only released figures are plotted:
ledger shares, validation pass rates and the held-out curve of runs whose split was
declared public. Never a training loss (a noiseless sum over private rows).
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from governance.evidence.report.gather_data import QualityRecord
from governance.evidence.report.gather_runs import DatasetBudget
from governance.storage.store import Run

# Per-epoch curves the report may plot: held-out accuracy (stored only when the held-out split is public).
RELEASABLE_CURVES = ("test_accuracy",)


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    alt: str
    data_uri: str


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _encode(plt: Any, fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def budget_plot(budgets: list[DatasetBudget]) -> Plot | None:
    """Each dataset's committed spend over time, as the share of its Rényi filter budget (1.0 = the cap)."""
    if not budgets:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3))
    for b in budgets:
        if b.points:
            xs = [b.points[0][0]] + [t for t, _ in b.points]
            ys = [0.0] + [u for _, u in b.points]
            ax.step(xs, ys, where="post", marker="o", label=f"{b.dataset} (cap ε={b.status.epsilon_cap:g}, "
                                                            f"α={b.status.order:g})")
        else:
            ax.plot([], [], label=f"{b.dataset}: nothing spent")
    ax.axhline(1.0, color="#b3261e", linewidth=1)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of the budget")
    ax.set_xlabel("committed at (UTC)")
    ax.set_title("Privacy budget over time (red: the cap)")
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return Plot("budget", "Privacy budget over time per dataset",
                "Step plot of each dataset's committed privacy spend as a share of its cap over time", _encode(plt, fig))


def quality_plot(records: list[QualityRecord]) -> Plot | None:
    if not records:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    series: dict[str, list[tuple[int, float]]] = {}
    for i, rec in enumerate(records):
        n = len(rec.expectations)
        passed = sum(e.outcome == "pass" for e in rec.expectations)
        series.setdefault(f"{rec.dataset} ({rec.stage})", []).append((i + 1, passed / n if n else 1.0))
    for label, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set_ylim(-0.05, 1.05)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("validation # (chronological)")
    ax.set_ylabel("expectations passed")
    ax.set_title("Validation pass rate")
    ax.legend(fontsize=7)
    return Plot("quality", "Validation pass rate", "Share of expectations passed per validation", _encode(plt, fig))


def curve_plot(runs: list[Run]) -> Plot | None:
    """The latest run's held-out accuracy per epoch, when its split was declared public."""
    with_curve = [r for r in runs if any(k in h for h in (r.metrics_json or {}).get("history") or []
                                         if isinstance(h, dict) for k in RELEASABLE_CURVES)]
    if not with_curve:
        return None
    r = with_curve[-1]
    hist = [h for h in r.metrics_json["history"] if isinstance(h, dict)]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 2.8))
    for k in RELEASABLE_CURVES:
        pts = [(h.get("epoch", i + 1), h[k]) for i, h in enumerate(hist) if k in h]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=k)
    ax.set_xlabel("epoch")
    ax.set_title(f"Held-out curve, run {r.run_uid}")
    ax.legend(fontsize=7)
    return Plot("curve", f"Held-out curve, run {r.run_uid}", "Held-out accuracy per epoch", _encode(plt, fig))
