"""What the report shows of training runs: no training loss, suppressed groups as stored."""
from __future__ import annotations


def _add_run(ws, uid: str, history: list[dict], per_group: dict) -> None:
    from governance.storage.store import Run

    with ws.session() as s:
        s.add(Run(run_uid=uid, pipeline="p", dataset_name="d", principal="x", purpose="y", status="succeeded",
                  metrics_json={"metrics": {}, "per_group": per_group, "history": history},
                  model_card_json={"privacy": {"epsilon_covers": "raw data"}}))


def test_a_stored_training_loss_is_never_plotted(workspace) -> None:
    """Runs stored before the loss was dropped still carry it; the report plots only held-out curves."""
    from governance.evidence.report import build_report

    ws, _ = workspace
    before = build_report(ws).count("<img")  # the bound budgets' plot
    _add_run(ws, "old", [{"epoch": 1, "train_loss": 0.7, "rows": 812.0}, {"epoch": 2, "train_loss": 0.6}], {})
    assert build_report(ws).count("<img") == before
    _add_run(ws, "public", [{"epoch": 1, "step": 5, "test_accuracy": 0.7}], {})
    assert build_report(ws).count("<img") == before + 1  # a held-out curve (split declared public) is plotted


def test_per_group_rows_show_suppressed_groups_in_words(workspace) -> None:
    from governance.evidence.report import build_report

    ws, _ = workspace
    shown = {"n": 250, "accuracy": 0.81, "recall": 0.5, "positive_rate": 0.2}
    hidden = {k: "< 20" for k in shown}
    _add_run(ws, "r", [], {"race": {"groups": {"white": shown, "asian": hidden}, "min_group_size": 20,
                                    "demographic_parity_difference": 0.0, "equalized_odds_difference": 0.0}})
    html = build_report(ws)
    assert "<td>race</td><td>white</td><td>250</td><td>0.8100</td>" in html
    assert "<td>race</td><td>asian</td><td>&lt; 20</td><td>&lt; 20</td>" in html
    assert "ε covers: raw data" in html
