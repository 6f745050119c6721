"""`privgov run` and `privgov demo`: governed pipeline runs with a progress display."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from governance.cli.common import (
    TokenOpt, WorkspaceOpt, _console, _open, _token, app,
)


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="Pipeline YAML file."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
    adult_dir: Optional[Path] = typer.Option(None, help="Folder with adult.data/adult.test (sets PRIVGOV_ADULT_DIR)."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="RUN",
                                         help="Finish training run RUN from its last checkpoint, under the budget "
                                              "it already reserved (after a crash or kill)."),
) -> None:
    """Run a declared pipeline end to end with a per-stage progress display."""
    summary = _run_pipeline(pipeline, workspace, _token(token), adult_dir, resume)
    _print_summary(summary, json_out)


def _run_pipeline(pipeline: Path, workspace: Optional[Path], token: Optional[str], adult_dir: Optional[Path],
                  resume: Optional[str] = None):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from governance.run.runner import PipelineRunner
    from governance.run.spec import load_pipeline

    overrides = {"PRIVGOV_ADULT_DIR": str(adult_dir.resolve())} if adult_dir else None
    spec = load_pipeline(pipeline, overrides)
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

            runner = PipelineRunner(ws, spec, token, progress)
            return runner.resume(resume) if resume else runner.run()


def _print_summary(summary, json_out: bool) -> None:
    from dataclasses import asdict

    if json_out:
        print(json.dumps(asdict(summary), indent=2, default=str))
        return
    out = _console()
    out.print(f"[bold]Run {summary.run_uid}[/] on `{summary.dataset}`: {summary.status}")
    out.print(f"  rows ingested {summary.rows_ingested:,}; stored {summary.rows_clean:,} as version {summary.version}; "
              f"quarantined {summary.rows_quarantined:,}"
              + (f" (version {summary.quarantine_version})" if summary.quarantine_version else ""))
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
    pipeline: Path = typer.Argument(Path("examples/clinic/pipeline.yaml"), help="Pipeline to run."),
    workspace: Optional[Path] = WorkspaceOpt,
    audit: bool = typer.Option(True, "--audit/--no-audit",
                               help="Audit the trained model afterwards (membership inference + one-run canary audit)."),
) -> None:
    """Create the workspace if needed, enrol the demo principal, run the example pipeline and audit its model."""
    from governance.access.identity import add_principal, issue_token, list_principals
    from governance.run.spec import load_pipeline
    from governance.workspace import Workspace, resolve_root

    root = resolve_root(workspace)
    spec = load_pipeline(pipeline)
    ws = Workspace.open(root) if (root / "workspace.json").exists() else Workspace.create(root)
    with ws.lock(), ws.session() as s:
        names = {p.name for p in list_principals(s)}
        if spec.principal not in names:
            add_principal(s, spec.principal, kind="service", roles=["ml-engineer", "data-engineer"])
        token = issue_token(s, spec.principal, ttl_days=1)
        ws.audit.record(s, principal="local-admin", action="token_issue", decision="info",
                        details={"principal": spec.principal, "ttl_days": 1})
    summary = _run_pipeline(pipeline, root, token, None)
    _print_summary(summary, False)
    if audit and summary.epsilon_spent is not None:
        from governance.cli.models import audit_model

        audit_model(run_uid=summary.run_uid, purpose=None, canaries=200, seed=0, skip_canary=False, json_out=False,
                    workspace=root, token=token)
        if summary.report_path:
            from governance.evidence.report import write_report

            write_report(ws, Path(summary.report_path))
            _console().print(f"  report updated with the audit: {summary.report_path}")
    _console().print(f"Inspect: privgov dataset list · privgov budget show {spec.dataset} · privgov audit verify")
