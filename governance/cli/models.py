"""`privgov predict`, `privgov model-card`, `privgov audit-model`: governed use of stored models."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import (
    JsonOpt, TokenOpt, WorkspaceOpt, _token, _console, _open, app, emit, jsonable,
)


# --------------------------------------------------------------------------- models
@app.command()
def predict(
    run_uid: str = typer.Argument(..., metavar="RUN", help="Training run whose stored model scores the data."),
    data: Path = typer.Option(..., "--data", help="CSV or Parquet file with the model's feature columns."),
    out: Path = typer.Option(..., "--out", help="Where to write row id, probability, prediction (.csv or .parquet)."),
    purpose: str = typer.Option(..., "--purpose", help="Why you score this data (checked against the policy)."),
    threshold: float = typer.Option(0.5, help="Probability at or above which `prediction` is 1."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Score a file with a stored model after a policy check (`predict` on the run's dataset); audited."""
    from governance.run import models as model_ops

    ws = _open(workspace)
    auth, _ = model_ops.authorize_model_use(ws, _token(token), "predict", run_uid, purpose)
    res = model_ops.predict(ws, auth.identity.name, run_uid, data, out, purpose, threshold)
    emit({"run_uid": run_uid, **jsonable(res)}, as_json, lambda: _console().print(
        f"scored {res.rows:,} rows with the model of run {run_uid}: {res.predicted_positive:,} predicted "
        f"`{res.target}` = `{res.positive_label}`; wrote {res.out}"))
    for col, share in res.unseen_categories.items():
        _console(stderr=True).print(f"warning: {share:.1%} of `{col}` values were not seen in training "
                                    "(scored as unknown); was the file de-identified like the training data?")


@app.command("model-card")
def model_card(
    run_uid: str = typer.Argument(..., metavar="RUN", help="Training run."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the JSON here instead of stdout."),
    workspace: Optional[Path] = WorkspaceOpt,
    as_json: bool = typer.Option(False, "--json", help="Accepted for uniformity: the card is always JSON "
                                 "(with --out, prints where it was written as JSON)."),
) -> None:
    """Print or write a run's model card (JSON); metadata only, no token needed.

    Data version hash, privacy unit, ε, δ, accountant, σ, q, steps, clipping, sampler, bounding,
    ledger composition, metrics, fairness, audit results, code version."""
    from governance.storage.atomic_write import write_text
    from governance.storage.store import Run
    from privacy.errors import InputError

    ws = _open(workspace)
    with ws.session() as s:
        run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
        if run is None or not run.model_card_json:
            raise InputError(f"run {run_uid}: no such run, or it stored no model card (only finished training runs do)")
        text = json.dumps(run.model_card_json, indent=2, sort_keys=True, default=str)
    if out is None:
        print(text)
        return
    write_text(out, text + "\n")
    emit({"run_uid": run_uid, "out": out}, as_json,
         lambda: _console().print(f"wrote the model card of run {run_uid} to {out}"))


@app.command("audit-model")
def audit_model(
    run_uid: str = typer.Argument(..., metavar="RUN", help="Training run whose model to audit."),
    purpose: Optional[str] = typer.Option(None, "--purpose", help="Default: the purpose the run trained for."),
    canaries: Optional[int] = typer.Option(None, help="Canaries for the one-run audit (each inserted with "
                                            "probability 1/2); default 200, or 1000 with --whitebox."),
    whitebox: bool = typer.Option(False, "--whitebox",
                                  help="White-box one-run audit: gradient canaries, all iterates (more power)."),
    seed: int = typer.Option(0, help="Seed for canaries and member sampling."),
    skip_canary: bool = typer.Option(False, "--skip-canary",
                                     help="Membership inference only: no retraining, no budget spent."),
    json_out: bool = JsonOpt,
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Empirical privacy audit of a stored model; the result goes on its model card and the report.

    Loss-threshold membership inference on the stored model (train vs held-out units), and the
    one-run canary audit (Steinke, Nasr & Jagielski 2023), which retrains once with the same DP
    settings and is charged to the privacy budget as its own run: canary records scored by their
    loss, or with --whitebox gradient canaries scored on every iterate."""
    from governance.run import models as model_ops

    ws = _open(workspace)
    with ws.lock():
        auth, purpose = model_ops.authorize_model_use(ws, _token(token), "train", run_uid, purpose)
        rec = model_ops.audit_model(ws, auth.identity.name, run_uid, purpose, canaries=canaries, seed=seed,
                                    skip_canary=skip_canary, whitebox=whitebox, auth=auth)
    emit(rec, json_out, lambda: print_audit(run_uid, rec))


def _print_charge(con, audit: dict) -> None:
    """The retraining's charge as ledger facts (before/after, its own epsilon), never a difference."""
    b = audit.get("budget")
    tail = (f": ledger ε {b['ledger_epsilon_before']:.3f} → {b['ledger_epsilon_after']:.3f} "
            f"(order α {b['composition_order']:g}); its own ε {b['run_epsilon']:.3f}" if b else "")
    con.print(f"  the audit retraining was charged to the budget as run {audit['audit_run_uid']}{tail}")


def print_audit(run_uid: str, rec: dict) -> None:
    """The audit record in words (also used by `privgov demo`)."""
    con = _console()
    mia = rec["membership_inference"]
    con.print(f"[bold]Audit of run {run_uid}[/] (claimed ε = {rec['claimed_epsilon']:.3f}, δ = {rec['delta']:g})")
    con.print(f"  membership inference (loss threshold, training vs held-out units): AUC {mia['auc']:.3f}, "
              f"TPR at 1% FPR {mia['tpr_at_1pct_fpr']:.3f}")
    one = rec.get("one_run")
    if one:
        verdict = "[green]consistent with the claim[/]" if one["passed"] else "[red]EXCEEDS the claim: investigate[/]"
        chosen = (f"; chosen k+ = {one['k_pos']}, k- = {one['k_neg']} of {one['candidates']} pre-declared"
                  if "k_pos" in one else "")
        con.print(f"  one-run canary audit ({one['canaries']} canaries, {one['included']} inserted{chosen}, "
                  f"{one['correct']}/{one['guesses']} guesses right): ε̂ ≥ {one['epsilon_lower_bound']:.3f} at "
                  f"{one['confidence']:.0%} confidence vs ε {one['claimed_epsilon']:.3f} — {verdict}")
        _print_charge(con, one)
    wb = rec.get("whitebox")
    if wb:
        verdict = "[green]consistent with the claim[/]" if wb["passed"] else "[red]EXCEEDS the claim: investigate[/]"
        con.print(f"  white-box one-run audit ({wb['canaries']} gradient canaries; chosen k+ = {wb['k_pos']}, "
                  f"k- = {wb['k_neg']} of {wb['candidates']} pre-declared, {wb['correction']}; "
                  f"{wb['correct']}/{wb['guesses']} right): ε̂ ≥ {wb['epsilon_lower_bound']:.3f} at "
                  f"{wb['confidence']:.0%} confidence vs ε {wb['claimed_epsilon']:.3f} — {verdict}")
        _print_charge(con, wb)
