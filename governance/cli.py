"""`privgov` command line.

Why this shape: pipelines (Airflow, Dagster, cron) call it and branch on the
exit code, people read its output. Every failure is one line `error: ...` on
stderr with a stable exit code (1 quality gate, 2 bad input, 3 denied, 4
integrity). Only typer is imported at start-up: `privgov --help` must stay well
under a second, so torch, Great Expectations, pandas and SQLAlchemy are imported
inside the commands that need them.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="privgov",
    help="Privacy-focused data governance: quality gates, de-identification, encryption at rest, "
    "policy-as-code, differentially private training and a tamper-evident audit log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dataset_app = typer.Typer(help="Datasets, versions, lineage, export and erasure.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained, signed audit log.", no_args_is_help=True)
budget_app = typer.Typer(help="Privacy budget ledger.", no_args_is_help=True)
quality_app = typer.Typer(help="Validate data with Great Expectations suites.", no_args_is_help=True)
pii_app = typer.Typer(help="Detect and transform personal data.", no_args_is_help=True)
policy_app = typer.Typer(help="Policy-as-code: test policies against expected decisions.", no_args_is_help=True)
principal_app = typer.Typer(help="People and service accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="Key-encryption keys: rotation and retirement.", no_args_is_help=True)
access_app = typer.Typer(help="Access reviews.", no_args_is_help=True)
sample_app = typer.Typer(help="Built-in sample data generators.", no_args_is_help=True)
for sub, name in [
    (dataset_app, "dataset"), (audit_app, "audit"), (budget_app, "budget"), (quality_app, "quality"),
    (pii_app, "pii"), (policy_app, "policy"), (principal_app, "principal"), (token_app, "token"),
    (keys_app, "keys"), (access_app, "access"), (sample_app, "sample"),
]:
    app.add_typer(sub, name=name)

WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="Workspace directory (default $PRIVGOV_WORKSPACE or ./.privgov).")
TokenOpt = typer.Option(None, "--token", help="API token (default $PRIVGOV_TOKEN).")


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _open(workspace: Optional[Path]):
    from governance.workspace import Workspace, resolve_root

    return Workspace.open(resolve_root(workspace))


def _token(token: Optional[str]) -> Optional[str]:
    return token or os.environ.get("PRIVGOV_TOKEN")


def _authenticated(ws, s, token: Optional[str], action: str, resource: Optional[str] = None,
                   purpose: Optional[str] = None):
    """The token's principal; a missing or bad token is audited as a deny before it is raised."""
    from governance.identity import authenticate
    from privacy.errors import AccessDenied

    tok = _token(token)
    try:
        if not tok:
            raise AccessDenied(f"`{action}` needs an API token: pass --token or set PRIVGOV_TOKEN")
        return authenticate(s, tok)
    except AccessDenied as exc:
        ws.audit.record(s, principal="anonymous", action=action, decision="deny", resource=resource,
                        purpose=purpose, reason=str(exc))
        raise


def _require_admin(ws, token: Optional[str], action: str) -> str:
    """Admin operations need a token whose principal has the `admin` role; audited either way."""
    from privacy.errors import AccessDenied

    with ws.session() as s:
        p = _authenticated(ws, s, token, action)
        if "admin" not in (p.roles or []):
            ws.audit.record(s, principal=p.name, action=action, decision="deny", reason="principal lacks role admin")
            raise AccessDenied(f"`{action}` needs the admin role; `{p.name}` has {sorted(p.roles or [])}")
        ws.audit.record(s, principal=p.name, action=action, decision="allow")
        return p.name


# --------------------------------------------------------------------------- workspace
@app.command()
def init(
    workspace: Optional[Path] = WorkspaceOpt,
    key_provider: str = typer.Option("file", help="Where the key-encryption key comes from: file | passphrase | env."),
    admin: str = typer.Option("admin", help="Name of the first admin principal."),
) -> None:
    """Create a workspace (SQLite DB, encrypted object store, keyring, audit log) and an admin principal."""
    from governance.identity import add_principal, issue_token
    from governance.workspace import Workspace, resolve_root

    root = resolve_root(workspace)
    passphrase = os.environ.get("PRIVGOV_PASSPHRASE") if key_provider == "passphrase" else None
    ws = Workspace.create(root, key_provider=key_provider, passphrase=passphrase)
    with ws.lock(), ws.session() as s:
        add_principal(s, admin, kind="person", roles=["admin"])
        token = issue_token(s, admin, ttl_days=90)
        ws.audit.record(s, principal="local-admin", action="init", decision="info", details={"admin": admin})
        ws.audit.checkpoint(s)
    out = _console()
    out.print(f"Workspace created at {root}")
    out.print(f"Admin principal `{admin}`; its token is shown once — store it now:")
    print(token)


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

    from governance.pipeline import PipelineRunner
    from governance.pipeline_spec import load_pipeline

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
    from governance.identity import add_principal, issue_token, list_principals
    from governance.pipeline_spec import load_pipeline
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
        audit_model(run_uid=summary.run_uid, purpose=None, canaries=200, seed=0, skip_canary=False, json_out=False,
                    workspace=root, token=token)
        if summary.report_path:
            from governance.report import write_report

            write_report(ws, Path(summary.report_path))
            _console().print(f"  report updated with the audit: {summary.report_path}")
    _console().print(f"Inspect: privgov dataset list · privgov budget show {spec.dataset} · privgov audit verify")


@app.command()
def report(
    out: Path = typer.Option(Path("reports/privgov-report.html"), "--out", help="HTML file to write."),
    workspace: Optional[Path] = WorkspaceOpt,
) -> None:
    """Write a self-contained HTML report of datasets, validations, decisions, runs, budgets and audit status."""
    from governance.report import write_report

    ws = _open(workspace)
    write_report(ws, out)
    _console().print(f"report written to {out}")


# --------------------------------------------------------------------------- datasets
@dataset_app.command("list")
def dataset_list(workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Datasets with their latest version, rows and validation status."""
    from rich.table import Table

    from governance import catalog
    from governance.store import Dataset

    ws = _open(workspace)
    table = Table("dataset", "versions", "latest", "rows", "validation", "tags", "lineage")
    with ws.session() as s:
        for ds in s.query(Dataset).order_by(Dataset.name):
            vs = catalog.versions_of(s, ds, kind="data")
            last = vs[-1] if vs else None
            table.add_row(ds.name, str(len(vs)), str(last.version if last else "-"),
                          f"{last.row_count:,}" if last else "-", last.validation_status if last else "-",
                          ",".join(ds.tags or []), ds.lineage_id[:12])
    _console().print(table)


@dataset_app.command("show")
def dataset_show(name: str, workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Every version: rows, content hash, key id, validation status, lineage, erasure."""
    from rich.table import Table

    from governance import catalog

    ws = _open(workspace)
    with ws.session() as s:
        ds = catalog.find_dataset(s, name)
        out = _console()
        out.print(f"[bold]{ds.name}[/]  lineage {ds.lineage_id}  privacy unit {ds.privacy_unit or 'row'}  tags {ds.tags}")
        table = Table("version", "kind", "rows", "units", "content sha256", "data key", "validation", "parent", "erased")
        versions = catalog.versions_of(s, ds)
        number_of = {v.id: v.version for v in versions}
        for v in versions:
            parent = number_of.get(v.parent_id)
            table.add_row(str(v.version), v.kind, f"{v.row_count:,}", str(v.unit_count or "-"), v.content_hash[:16],
                          str(v.data_key_id), v.validation_status, str(parent or "-"),
                          v.erased_at.strftime("%Y-%m-%d %H:%M") if v.erased_at else "")
        out.print(table)


@dataset_app.command("erase")
def dataset_erase(
    name: str,
    version: int = typer.Option(..., "--version", help="Version to crypto-shred."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Crypto-shred a version (destroy its data key) and list everything derived from it."""
    from governance import catalog

    ws = _open(workspace)
    with ws.lock():
        who = _require_admin(ws, token, "erase")
        with ws.session() as s:
            ds = catalog.find_dataset(s, name)
            rep = catalog.erase_version(ws, s, ds, version)
            ws.audit.record(s, principal=who, action="erase", decision="info", resource=name, version=version,
                            details={"affected_versions": rep.affected_versions, "affected_runs": len(rep.affected_runs)})
            ws.audit.checkpoint(s)
    out = _console()
    out.print(f"Erased `{name}` version {version}: its data key is destroyed; the ciphertext can no longer be read.")
    out.print(f"  derived versions flagged: {rep.affected_versions or 'none'}")
    out.print(f"  models flagged (trained on it): {rep.affected_runs or 'none'}")
    out.print("  not covered: " + "; ".join(rep.not_covered))


# --------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(
    workspace: Optional[Path] = WorkspaceOpt,
    file: Optional[Path] = typer.Option(None, "--file", help="Verify an exported JSONL extract instead."),
) -> None:
    """Recompute the hash chain and check checkpoint signatures; exit 0 only if everything checks out."""
    from privacy.errors import IntegrityFailure

    if file is not None:
        from governance.audit import verify_file

        rep = verify_file(file)
    else:
        ws = _open(workspace)
        with ws.session() as s:
            rep = ws.audit.verify(s)
    out = _console()
    if rep.ok:
        out.print(f"audit log OK: {rep.events} events, {rep.checkpoints} signed checkpoints")
        return
    for problem in rep.problems:
        out.print(f"[red]✗[/] {problem}")
    raise IntegrityFailure(f"audit log verification failed: {rep.problems[0]}")


@audit_app.command("export")
def audit_export(
    out: Path = typer.Option(..., "--out", help="JSONL file to write (public key + events + checkpoints)."),
    since: Optional[str] = typer.Option(None, "--since", help="ISO date; events before it are summarised by an anchor hash."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (the only format)."),
    workspace: Optional[Path] = WorkspaceOpt,
) -> None:
    """Write a verifiable extract; check it elsewhere with `privgov audit verify --file`."""
    import datetime as dt

    from privacy.errors import InputError

    if fmt != "jsonl":
        raise InputError(f"--format: expected jsonl, got {fmt!r}")
    try:
        start = dt.datetime.fromisoformat(since) if since else None
    except ValueError:
        raise InputError(f"--since: expected an ISO date like 2026-11-01, got {since!r}") from None
    ws = _open(workspace)
    with ws.session() as s:
        n = ws.audit.export(s, start, out)
    _console().print(f"exported {n} events to {out}")


@audit_app.command("log")
def audit_log(
    workspace: Optional[Path] = WorkspaceOpt,
    dataset: Optional[str] = typer.Option(None, "--dataset"),
    limit: int = typer.Option(50, help="Show the last N events."),
) -> None:
    """The latest audit events (who, what, which version, purpose, decision, ε)."""
    from rich.table import Table

    from governance.audit import AuditEvent

    ws = _open(workspace)
    table = Table("seq", "time", "principal", "action", "resource", "ver", "purpose", "decision", "ε", "reason")
    with ws.session() as s:
        q = s.query(AuditEvent)
        if dataset:
            q = q.filter(AuditEvent.resource == dataset)
        rows = q.order_by(AuditEvent.seq.desc()).limit(limit).all()
        for e in reversed(rows):
            table.add_row(str(e.seq), e.ts.strftime("%H:%M:%S") if hasattr(e.ts, "strftime") else str(e.ts),
                          e.principal, e.action, e.resource or "", str(e.version or ""), e.purpose or "",
                          e.decision, f"{e.epsilon:.3f}" if e.epsilon is not None else "", (e.reason or "")[:60])
    _console().print(table)


# --------------------------------------------------------------------------- budget
@budget_app.command("show")
def budget_show(name: str, workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Cap, spent, reserved and remaining ε for a dataset's lineage, with per-run history."""
    from rich.table import Table

    from governance import catalog

    ws = _open(workspace)
    with ws.session() as s:
        ds = catalog.find_dataset(s, name)
        lineage, unit = ds.lineage_id, ds.privacy_unit or "row"
    st = ws.ledger.status(lineage, unit)
    out = _console()
    out.print(f"[bold]{name}[/] (privacy unit: {unit})")
    out.print(f"  cap ε={st.epsilon_cap:g}, δ={st.delta_cap:g}")
    out.print(f"  spent (RDP-composed) ε={st.spent:.4f}; reserved ε={st.reserved:.4f}; remaining ε={st.remaining:.4f}")
    out.print(f"  naive sum of per-run ε={st.naive_sum_epsilon:.4f} (composition saves {st.naive_sum_epsilon - st.composed_epsilon:.4f})")
    table = Table("run", "state", "ε target", "ε charged", "δ", "RDP curve", "reserved at", "committed at")
    for r in st.runs:
        table.add_row(r.run_uid, r.state, f"{r.target_epsilon:.4f}", f"{r.epsilon:.4f}", f"{r.delta:g}",
                      "yes" if r.has_curve else "no (basic composition)",
                      str(r.reserved_at)[:19], str(r.committed_at or "")[:19])
    out.print(table)


# --------------------------------------------------------------------------- sample data
@sample_app.command("clinic")
def sample_clinic(
    rows: int = typer.Option(10000, "--rows", min=1),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="CSV or Parquet file to write."),
) -> None:
    """Generate realistic, deliberately dirty clinic-visit records (synthetic people)."""
    from governance.sample_data import write_clinic

    write_clinic(out, rows, seed)
    _console().print(f"wrote {rows:,} synthetic clinic visits to {out}")


# --------------------------------------------------------------------------- governed reads
def _authorize(ws, token: Optional[str], action: str, dataset_name: str, purpose: Optional[str]):
    """Authenticate, decide under the dataset's recorded policy, audit; return (principal, decision, ds)."""
    from governance import catalog
    from governance.store import PolicyRecord, utcnow
    from policies.engine import Request, decide
    from policies.schema import parse_policy
    from privacy.errors import AccessDenied

    with ws.session() as s:
        ds = catalog.find_dataset(s, dataset_name)
        p = _authenticated(ws, s, token, action, dataset_name, purpose)
        rec = s.query(PolicyRecord).filter(PolicyRecord.content_hash == ds.policy_hash).one_or_none()
        if rec is None:
            ws.audit.record(s, principal=p.name, action=action, decision="deny", resource=dataset_name,
                            purpose=purpose, reason="no policy bound to dataset")
            raise AccessDenied(f"dataset `{dataset_name}` has no policy bound; nobody may `{action}` it (deny by default)")
        policy = parse_policy(rec.text, source=f"policy {rec.name}")
        d = decide(Request(principal=p.name, roles=list(p.roles or []), action=action, dataset=dataset_name,
                           tags=list(ds.tags or []), purpose=purpose, now=utcnow()), policy)
        ws.audit.record(s, principal=p.name, action=action, decision="allow" if d.allowed else "deny",
                        resource=dataset_name, purpose=purpose, reason=d.reason)
        if not d.allowed:
            raise AccessDenied(f"`{p.name}` may not `{action}` `{dataset_name}` for purpose `{purpose}`: {d.reason}")
        return p.name, d, ds


@dataset_app.command("export")
def dataset_export(
    name: str,
    purpose: str = typer.Option(..., "--purpose", help="Why you need the data (required for every access)."),
    out: Path = typer.Option(..., "--out", help="CSV or Parquet file to write."),
    version: Optional[int] = typer.Option(None, "--version"),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Write only what the principal may see (masks, row filters applied); the export is audited."""
    from governance import catalog
    from governance.atomic_write import write_frame
    from governance.obligations import apply_obligations

    ws = _open(workspace)
    who, decision, _ = _authorize(ws, token, "read_masked", name, purpose)
    with ws.session() as s:
        ds = catalog.find_dataset(s, name)
        row = catalog.get_version(s, ds, version)
        df = catalog.read_version(ws, s, ds, row)
    masked = apply_obligations(df, decision.obligations, key=ws.keyring.hmac_key(f"export:{name}"))
    write_frame(masked, out)
    with ws.session() as s:
        ws.audit.record(s, principal=who, action="export", decision="info", resource=name, version=row.version,
                        purpose=purpose, details={"rows": int(len(masked)), "columns": int(masked.shape[1]),
                                                  "masked_columns": ",".join(sorted(decision.obligations.column_masks))[:128]})
        ws.audit.checkpoint(s)
    _console().print(f"exported {len(masked):,} rows × {masked.shape[1]} columns of `{name}` v{row.version} to {out}")


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
) -> None:
    """Score a file with a stored model after a policy check (`predict` on the run's dataset); audited."""
    from governance import model_ops

    ws = _open(workspace)
    who, _, _ = _authorize(ws, token, "predict", model_ops.run_dataset(ws, run_uid), purpose)
    res = model_ops.predict(ws, who, run_uid, data, out, purpose, threshold)
    con = _console()
    con.print(f"scored {res.rows:,} rows with the model of run {run_uid}: {res.predicted_positive:,} predicted "
              f"`{res.target}` = `{res.positive_label}`; wrote {res.out}")
    for col, share in res.unseen_categories.items():
        _console(stderr=True).print(f"warning: {share:.1%} of `{col}` values were not seen in training "
                                    "(scored as unknown); was the file de-identified like the training data?")


@app.command("model-card")
def model_card(
    run_uid: str = typer.Argument(..., metavar="RUN", help="Training run."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the JSON here instead of stdout."),
    workspace: Optional[Path] = WorkspaceOpt,
) -> None:
    """Print or write a run's model card (JSON); metadata only, no token needed.

    Data version hash, privacy unit, ε, δ, accountant, σ, q, steps, clipping, sampler, bounding,
    ledger composition, metrics, fairness, audit results, code version."""
    from governance.atomic_write import write_text
    from governance.store import Run
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
    _console().print(f"wrote the model card of run {run_uid} to {out}")


@app.command("audit-model")
def audit_model(
    run_uid: str = typer.Argument(..., metavar="RUN", help="Training run whose model to audit."),
    purpose: Optional[str] = typer.Option(None, "--purpose", help="Default: the purpose the run trained for."),
    canaries: int = typer.Option(200, help="Canaries for the one-run audit (each inserted with probability 1/2)."),
    seed: int = typer.Option(0, help="Seed for canaries and member sampling."),
    skip_canary: bool = typer.Option(False, "--skip-canary",
                                     help="Membership inference only: no retraining, no budget spent."),
    json_out: bool = typer.Option(False, "--json", help="Print the audit record as JSON."),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Empirical privacy audit of a stored model; the result goes on its model card and the report.

    Loss-threshold membership inference on the stored model (train vs held-out units), and the
    one-run canary audit (Steinke, Nasr & Jagielski 2023), which retrains once with the same DP
    settings and is charged to the privacy budget as its own run."""
    from governance import model_ops
    from governance.store import Run

    ws = _open(workspace)
    dataset = model_ops.run_dataset(ws, run_uid)
    if purpose is None:
        with ws.session() as s:
            purpose = s.query(Run.purpose).filter(Run.run_uid == run_uid).scalar()
    with ws.lock():
        who, _, _ = _authorize(ws, token, "train", dataset, purpose)
        rec = model_ops.audit_model(ws, who, run_uid, purpose, canaries=canaries, seed=seed, skip_canary=skip_canary)
    if json_out:
        print(json.dumps(rec, indent=2, default=str))
        return
    con = _console()
    mia = rec["membership_inference"]
    con.print(f"[bold]Audit of run {run_uid}[/] (claimed ε = {rec['claimed_epsilon']:.3f}, δ = {rec['delta']:g})")
    con.print(f"  membership inference (loss threshold, {mia['n_members']:,} members vs {mia['n_nonmembers']:,} "
              f"held out): AUC {mia['auc']:.4f}, TPR at 1% FPR {mia['tpr_at_1pct_fpr']:.4f}")
    one = rec.get("one_run")
    if one:
        verdict = "[green]consistent with the claim[/]" if one["passed"] else "[red]EXCEEDS the claim: investigate[/]"
        con.print(f"  one-run canary audit ({one['canaries']} canaries, {one['included']} inserted, "
                  f"{one['correct']}/{one['guesses']} guesses right): ε̂ ≥ {one['epsilon_lower_bound']:.3f} at "
                  f"{one['confidence']:.0%} confidence vs ε {one['claimed_epsilon']:.3f} — {verdict}")
        con.print(f"  the audit retraining was charged to the budget as run {one['audit_run_uid']}")


# --------------------------------------------------------------------------- quality
def _load_data_arg(data: str, workspace: Optional[Path], token: Optional[str], action: str, purpose: str):
    """`DATA` is a file path, or `dataset:NAME[@VERSION]` for a stored (encrypted) version."""
    if data.startswith("dataset:"):
        from governance import catalog

        ref = data[len("dataset:"):]
        name, _, ver = ref.partition("@")
        ws = _open(workspace)
        _authorize(ws, token, action, name, purpose)
        with ws.session() as s:
            ds = catalog.find_dataset(s, name)
            row = catalog.get_version(s, ds, int(ver) if ver else None)
            return catalog.read_version(ws, s, ds, row), ds.row_id_column
    from governance.ingest import read_table

    return read_table(Path(data)), "row_id"


@quality_app.command("validate")
def quality_validate(
    data: str = typer.Argument(..., help="CSV/Parquet file, or dataset:NAME[@VERSION]."),
    suite: Path = typer.Option(..., "--suite", help="GX 1.x suite JSON."),
    fmt: str = typer.Option("text", "--format", help="text | json"),
    engine: str = typer.Option("fast", "--engine", help="fast | gx"),
    row_id: Optional[str] = typer.Option(None, "--row-id", help="Row-id column (assigned if absent)."),
    purpose: str = typer.Option("pipeline", "--purpose"),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Validate and exit 0 (pass), 1 (fail) or 2 (bad input); results carry row ids, never values."""
    from governance.quality import load_suite, validate
    from privacy.errors import InputError

    if fmt not in ("text", "json"):
        raise InputError(f"--format: expected text or json, got {fmt!r}")
    df, rid = _load_data_arg(data, workspace, token, "validate", purpose)
    if row_id:
        from governance.ingest import ensure_row_ids

        df = ensure_row_ids(df, row_id, source=data)
        rid = row_id
    st = load_suite(suite, columns=list(df.columns))
    result = validate(df, st, row_id_column=rid, engine=engine)
    if fmt == "json":
        print(result.to_json(indent=2))
    else:
        out = _console()
        out.print(f"suite `{result.suite}` on {data}: {'[green]PASSED[/]' if result.success else '[red]FAILED[/]'} "
                  f"({len(result.results) - len(result.failed)}/{len(result.results)} expectations, {result.row_count:,} rows)")
        for r in result.results:
            mark = "[green]✓[/]" if r.success else "[red]✗[/]"
            out.print(f"  {mark} {r.type}({r.column or ''}): {r.unexpected_count:,} unexpected"
                      + (f"; first row ids {list(r.failing_row_ids[:5])}" if r.failing_row_ids else ""))
    raise typer.Exit(0 if result.success else 1)


@quality_app.command("suggest")
def quality_suggest(
    data: str = typer.Argument(..., help="CSV/Parquet file, or dataset:NAME[@VERSION]."),
    out: Path = typer.Option(..., "--out", help="Suite JSON to write."),
    name: Optional[str] = typer.Option(None, "--name"),
    purpose: str = typer.Option("pipeline", "--purpose"),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Profile data and write a starting GX 1.x suite to edit."""
    from governance.atomic_write import write_text
    from governance.quality import suggest_suite

    df, rid = _load_data_arg(data, workspace, token, "validate", purpose)
    suite = suggest_suite(df, row_id_column=rid, name=name or Path(data).stem)
    write_text(out, json.dumps(suite, indent=2) + "\n")
    _console().print(f"wrote {len(suite['expectations'])} expectations to {out}")


# --------------------------------------------------------------------------- pii
@pii_app.command("scan")
def pii_scan(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    fmt: str = typer.Option("text", "--format", help="text | json"),
) -> None:
    """Detect PII per column (type, share of matching values, confidence); values are never printed."""
    from dataclasses import asdict, is_dataclass

    from rich.table import Table

    from governance.ingest import read_table
    from privacy.deid import scan

    findings = scan(read_table(data))
    if fmt == "json":
        print(json.dumps([asdict(f) if is_dataclass(f) else dict(f) for f in findings], indent=2, default=str))
        return
    table = Table("column", "pii type", "share", "confidence", "direct identifier")
    for f in findings:
        table.add_row(f.column, f.pii_type, f"{f.share:.1%}", f"{f.confidence:.2f}", "yes" if f.is_direct_identifier else "")
    _console().print(table)


@pii_app.command("apply")
def pii_apply(
    data: Path = typer.Argument(..., help="CSV/Parquet file."),
    spec: Path = typer.Option(..., "--spec", help="YAML list of de-identification steps."),
    out: Path = typer.Option(..., "--out", help="File to write (CSV/Parquet)."),
    workspace: Optional[Path] = WorkspaceOpt,
) -> None:
    """Apply drop / pseudonymize / generalize / suppress steps with the workspace's HMAC keys."""
    from governance.atomic_write import write_frame
    from governance.ingest import read_table
    from policies.schema import load_yaml_file
    from privacy.deid import apply_deid
    from privacy.deid.spec import deid_steps_from_yaml

    steps = deid_steps_from_yaml(load_yaml_file(spec, "de-identification spec"))
    ws = _open(workspace)
    df, report = apply_deid(read_table(data), steps, key_for_domain=ws.keyring.hmac_key)
    write_frame(df, out)
    for r in report:
        _console().print(f"  {r}")


# --------------------------------------------------------------------------- policy
@policy_app.command("test")
def policy_test(policy: Path, cases: Path) -> None:
    """Run a table of expected decisions against a policy; exit 1 if any case fails."""
    from policies.casetest import run_cases

    rep = run_cases(policy, cases)
    out = _console()
    out.print(rep.format())
    raise typer.Exit(0 if rep.ok else 1)


# --------------------------------------------------------------------------- identity
@principal_app.command("add")
def principal_add(
    name: str,
    roles: str = typer.Option("", "--roles", help="Comma-separated roles."),
    kind: str = typer.Option("person", "--kind", help="person | service"),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Add a principal (admin only)."""
    from governance.identity import add_principal

    ws = _open(workspace)
    who = _require_admin(ws, token, "principal_add")
    with ws.session() as s:
        add_principal(s, name, kind=kind, roles=[r for r in roles.split(",") if r])
        ws.audit.record(s, principal=who, action="principal_add", decision="info", details={"name": name})
    _console().print(f"added {kind} `{name}`")


@principal_app.command("list")
def principal_list(workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Principals, roles and status."""
    from rich.table import Table

    from governance.identity import list_principals

    ws = _open(workspace)
    table = Table("name", "kind", "roles", "created", "revoked")
    with ws.session() as s:
        for p in list_principals(s):
            table.add_row(p.name, p.kind, ",".join(p.roles or []), str(p.created_at)[:19], str(p.revoked_at or "")[:19])
    _console().print(table)


@principal_app.command("revoke")
def principal_revoke(name: str, workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt) -> None:
    """Revoke a principal and all its tokens (admin only)."""
    from governance.identity import revoke_principal

    ws = _open(workspace)
    who = _require_admin(ws, token, "principal_revoke")
    with ws.session() as s:
        revoke_principal(s, name)
        ws.audit.record(s, principal=who, action="principal_revoke", decision="info", details={"name": name})
    _console().print(f"revoked `{name}`")


@token_app.command("issue")
def token_issue(
    name: str,
    ttl_days: int = typer.Option(90, "--ttl-days", min=1),
    workspace: Optional[Path] = WorkspaceOpt,
    token: Optional[str] = TokenOpt,
) -> None:
    """Issue an API token for a principal (admin only); it is printed once."""
    from governance.identity import issue_token

    ws = _open(workspace)
    who = _require_admin(ws, token, "token_issue")
    with ws.session() as s:
        new = issue_token(s, name, ttl_days=ttl_days)
        ws.audit.record(s, principal=who, action="token_issue", decision="info",
                        details={"principal": name, "ttl_days": ttl_days})
    print(new)


# --------------------------------------------------------------------------- keys
@keys_app.command("rotate")
def keys_rotate(workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt) -> None:
    """New key-encryption key; every data key is re-wrapped (no data re-encryption)."""
    ws = _open(workspace)
    with ws.lock():
        who = _require_admin(ws, token, "keys_rotate")
        with ws.session() as s:
            kek = ws.keyring.rotate(s)
            ws.audit.record(s, principal=who, action="keys_rotate", decision="info", details={"kek_id": kek})
            ws.audit.checkpoint(s)
    _console().print(f"active key-encryption key is now {kek}; all data keys re-wrapped")


@keys_app.command("retire")
def keys_retire(kek_id: str, workspace: Optional[Path] = WorkspaceOpt, token: Optional[str] = TokenOpt) -> None:
    """Remove an old key-encryption key once nothing is wrapped under it."""
    ws = _open(workspace)
    with ws.lock():
        who = _require_admin(ws, token, "keys_retire")
        with ws.session() as s:
            ws.keyring.retire(kek_id, s)
            ws.audit.record(s, principal=who, action="keys_retire", decision="info", details={"kek_id": kek_id})
    _console().print(f"retired {kek_id}")


# --------------------------------------------------------------------------- access review
@access_app.command("review")
def access_review(workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Who can do what on which dataset under the bound policies, and when each grant was last used."""
    from rich.table import Table

    from governance.access_review import review

    ws = _open(workspace)
    table = Table("dataset", "principal", "roles", "action", "purposes", "grant", "expires", "last used")
    with ws.session() as s:
        for row in review(s):
            table.add_row(*[str(x) if x is not None else "" for x in row])
    _console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: maps privgov errors to one line and an exit code.

    With `argv` given (tests, embedding) the exit code is returned instead of
    exiting the process.
    """
    from privacy.errors import PrivgovError

    code = 0
    try:
        app(args=argv, prog_name="privgov")
    except PrivgovError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
