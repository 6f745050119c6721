"""`privgov run` and `privgov demo`: governed pipeline runs with a progress display."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import (
    JsonOpt, TokenOpt, WorkspaceOpt, _console, _open, _token, app, emit,
)


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    adult_dir: Optional[Path] = typer.Option(None, help="Folder with adult.data/adult.test (sets PRIVGOV_ADULT_DIR)."),
    json_out: bool = JsonOpt,
    resume: Optional[str] = typer.Option(None, "--resume", metavar="RUN",
                                         help="Finish training run RUN from its last checkpoint, under the budget "
                                              "it already reserved (after a crash or kill)."),
    nproc: int = typer.Option(1, "--nproc", min=1, max=64,
                              help="Train with N processes (torch.distributed: gloo on CPU, NCCL on GPUs); this "
                                   "process stays rank 0. A resumed run needs the N it started with."),
    batch_rows: Optional[str] = typer.Option(None, "--batch-rows", metavar="N|auto",
                                             help="Stream the source in batches of N rows (auto: from available "
                                                  "memory; 0: in memory); overrides the pipeline's batch_rows."),
) -> None:
    """Run a declared pipeline end to end with a per-stage progress display."""
    summary = _run_pipeline(pipeline, workspace, _token(token), adult_dir, resume, nproc, batch_rows)
    _print_summary(summary, json_out)


def _run_pipeline(pipeline: Path, workspace: Optional[Path], token: Optional[str], adult_dir: Optional[Path],
                  resume: Optional[str] = None, nproc: int = 1, batch_rows: Optional[str] = None):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from governance.run.runner import resume_pipeline, run_pipeline
    from governance.run.spec import load_pipeline

    overrides = {"PRIVGOV_ADULT_DIR": str(adult_dir.resolve())} if adult_dir else None
    spec = load_pipeline(pipeline, overrides)
    if batch_rows is not None:
        from governance.data.streaming import parse_batch_rows

        spec = spec.model_copy(update={"batch_rows": parse_batch_rows(batch_rows)})
    ws = _open(workspace)
    with ws.lock():
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=_console(stderr=True), transient=False) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, state: str) -> None:
                if state == "start":
                    tasks[stage] = bar.add_task(f"{stage} …", total=1)
                elif state == "failed":
                    bar.update(tasks[stage], completed=1, description=f"[red]✗[/] {stage}")
                else:
                    bar.update(tasks[stage], completed=1, description=f"[green]✓[/] {stage}")

            if resume:
                return resume_pipeline(ws, spec, token, resume, progress, nproc=nproc)
            return run_pipeline(ws, spec, token, progress, nproc=nproc)


def _print_summary(summary, json_out: bool) -> None:
    if json_out:
        emit(summary, True)
        return
    out = _console()
    out.print(f"[bold]Run {summary.run_uid}[/] on `{summary.dataset}`: {summary.status}")
    out.print(f"  rows ingested {summary.rows_ingested:,}; stored {summary.rows_clean:,} as version {summary.version}; "
              f"quarantined {summary.rows_quarantined:,}"
              + (f" (version {summary.quarantine_version})" if summary.quarantine_version else ""))
    if summary.pii_findings:
        shown = ", ".join(f"{f['column']} {f['pii_type']} ({f['action']})" for f in summary.pii_findings[:8])
        more = f" and {len(summary.pii_findings) - 8} more" if len(summary.pii_findings) > 8 else ""
        out.print(f"  PII gate: {shown}{more}", markup=False)
    if summary.quarantine_reasons:
        for label, count in summary.quarantine_reasons.items():
            out.print(f"    quarantine reason: {label}: {count:,} rows")
    if summary.epsilon_spent is not None:
        m = summary.metrics
        out.print(f"  DP training: ε spent {summary.epsilon_spent:.3f} (δ={summary.delta:g}); "
                  f"test accuracy {m.get('accuracy', float('nan')):.4f}, ROC AUC {m.get('roc_auc', float('nan')):.4f}")
    if summary.report_path:
        out.print(f"  report: {summary.report_path}")


@app.command()
def demo(
    pipeline: Optional[Path] = typer.Argument(None, help="Pipeline to run (default: the clinic example shipped "
                                              "inside the package, governance/demo/examples/clinic/pipeline.yaml)."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    audit: bool = typer.Option(True, "--audit/--no-audit",
                               help="Audit the trained model afterwards (membership inference + one-run canary audit)."),
    as_json: bool = JsonOpt,
) -> None:
    """Run the example pipeline (creating and setting up a workspace if there is none) and audit its model.

    A new workspace gets an admin, the pipeline's principal and the pipeline's policy bound to its
    dataset; on an existing workspace the demo needs a token like any other command. It ends with
    how to get a token and three commands to try next."""
    from governance.cli.models import print_audit
    from governance.demo.setup import example_pipeline, next_steps, prepare
    from governance.run import models as model_ops
    from governance.run.spec import load_pipeline
    from governance.workspace import resolve_root

    pipeline = pipeline if pipeline is not None else example_pipeline("clinic")
    root = resolve_root(workspace)
    spec = load_pipeline(pipeline)
    demo_ws = prepare(root, spec, _token(token))
    con = _console(stderr=as_json)
    if demo_ws.created and not as_json:  # with --json the token is in the document
        bound = spec.resolve(spec.policy).resolve() if spec.policy else "none"
        con.print(f"Workspace created at {root}; policy {bound} bound to `{spec.dataset}`.", soft_wrap=True)
        con.print("Admin token (shown once; `privgov policy bind`, `token issue`, `keys rotate` need it):")
        print(demo_ws.admin_token)
    summary = _run_pipeline(pipeline, root, demo_ws.token, None)
    result = {"workspace": root, "created": demo_ws.created, "admin_token": demo_ws.admin_token, "run": summary,
              "audit": None}
    if not as_json:
        _print_summary(summary, False)
    if audit and summary.epsilon_spent is not None:
        ws = demo_ws.ws
        with ws.lock():
            auth, purpose = model_ops.authorize_model_use(ws, demo_ws.token, "train", summary.run_uid, None)
            rec = model_ops.audit_model(ws, auth.identity.name, summary.run_uid, purpose, canaries=200, seed=0,
                                        auth=auth)
        result["audit"] = rec
        if not as_json:
            print_audit(summary.run_uid, rec)
        if summary.report_path:
            from governance.evidence.report import write_report

            write_report(ws, Path(summary.report_path))
            con.print(f"  report updated with the audit: {summary.report_path}")
    steps = next_steps(root, spec, summary.run_uid if summary.epsilon_spent is not None else None)
    result["next_steps"] = steps
    emit(result, as_json, lambda: print("\n".join(steps)))  # plain print: rich would wrap the commands
