"""The governed run, top to bottom: raw file → validated, cleaned, de-identified,
encrypted version → budget → DP training → evidence.

Why this order: data is decrypted for training only after an allow decision
and a budget reservation, both audited; a run whose `train` decision or budget
is refused stores nothing; every stage records counts, never values. The
policy is the one an admin bound to the dataset - a pipeline may name it, but
only that exact text.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable, TypeVar

from governance.access.authorize import (
    Authorization, Identity, authenticate, claimed_name, decide_for, record_decision, shown,
)
from governance.evidence.recorder import AuditRecorder, record_event
from governance.run import pii_gate, stages, training
from governance.run.context import Progress, RunContext
from governance.run.records import Quarantined, Reservation, RunSummary
from governance.run.spec import PipelineSpec
from governance.workspace import Workspace
from privacy.errors import AccessDenied, BudgetExceeded, InputError, PrivgovError

T = TypeVar("T")


def _noop(stage: str, state: str) -> None:  # pragma: no cover - default progress
    pass


class _Timer:
    """Shows each stage on the progress display and records its wall time in the summary."""

    def __init__(self, summary: RunSummary, progress: Progress | None) -> None:
        self.summary, self.progress = summary, progress or _noop

    def __call__(self, name: str, fn: Callable[[], T]) -> T:
        self.progress(name, "start")
        t0 = time.perf_counter()
        try:
            out = fn()
        except BaseException:
            self.summary.stage_seconds[name] = round(time.perf_counter() - t0, 3)
            self.progress(name, "failed")
            raise
        self.summary.stage_seconds[name] = round(time.perf_counter() - t0, 3)
        self.progress(name, "done")
        return out


# --------------------------------------------------------------------------- admission
def admit(ws: Workspace, spec: PipelineSpec, token: str | None) -> tuple[Identity, Authorization]:
    """Authenticate, check the pipeline against the dataset's binding, decide `ingest`.

    The pipeline's declared principal, policy file, privacy unit and tags are
    claims; each is checked against the authenticated identity and what the
    admin bound, and any mismatch is refused and audited."""
    identity = authenticate(ws, token, action="run", resource=spec.dataset, purpose=spec.purpose,
                            claimed=spec.principal)
    if identity.name != spec.principal:
        claimed = claimed_name(spec.principal)
        record_decision(ws, principal=identity.name, action="run", decision="deny", resource=spec.dataset,
                        purpose=spec.purpose, reason=f"pipeline declares principal `{claimed}`"[:500],
                        details={"claimed_principal": claimed})
        raise AccessDenied(f"the token belongs to `{identity.name}` but the pipeline declares principal "
                           f"`{shown(spec.principal)}`")
    auth = decide_for(ws, identity, "ingest", spec.dataset, spec.ingest_purpose)
    _check_binding(ws, spec, auth)
    return identity, auth


def _check_binding(ws: Workspace, spec: PipelineSpec, auth: Authorization) -> None:
    from governance.access.binding import policy_digest

    ds, problem = auth.dataset, None
    if spec.policy is not None:
        path = spec.resolve(spec.policy)
        try:
            digest = policy_digest(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"pipeline `{spec.name}`: policy file {path}: cannot read it ({exc})") from None
        if digest != ds.policy_hash:
            problem = (f"names policy {path.name} (sha256 {digest[:12]}) but `{ds.name}` is bound to "
                       f"{(ds.policy_hash or '')[:12]}; only the bound policy applies (an admin rebinds with "
                       f"`privgov policy bind {ds.name} FILE`)")
    if problem is None and spec.privacy_unit is not None and spec.privacy_unit != ds.unit:
        problem = (f"declares privacy unit `{spec.privacy_unit}` but `{ds.name}` is bound with "
                   f"`{ds.unit}`; the unit is set by the admin who binds the policy")
    if problem is None and not set(spec.tags) <= set(ds.tags):
        problem = (f"declares tags {sorted(set(spec.tags) - set(ds.tags))} that `{ds.name}` is not bound with; "
                   "tags are set by the admin who binds the policy")
    if problem is not None:
        record_event(ws, principal=auth.identity.name, action="run", decision="deny", resource=ds.name,
                     purpose=spec.purpose, reason=f"pipeline {problem}"[:500])
        raise AccessDenied(f"pipeline `{spec.name}` {problem}")


def _require_bound_budget(ctx: RunContext, auth: Authorization) -> None:
    """Training needs a budget in the policy bound now, not only a cap left on the ledger.

    Why: rebinding a policy without `budgets` for the dataset leaves the ledger's
    old cap in place (a cap is never deleted: past entries stay counted), so
    `policy bind` said "training is refused" while runs went on training."""
    from policies.engine import budget_for

    if budget_for(auth.policy, ctx.dataset.name) is not None:
        return
    ctx.record("budget_reserve", decision="deny", purpose=ctx.spec.purpose,
               reason="the bound policy declares no budget for the dataset")
    raise AccessDenied(f"dataset `{ctx.dataset.name}`: the policy bound to it declares no privacy budget "
                       "(`budgets.datasets`); training is refused")


def _per_run_cap(ctx: RunContext, obligations: Any) -> float | None:
    """The grant's per-run ε cap; a target above it is a denial, and denials are audited."""
    try:
        return training.check_per_run_cap(ctx, obligations)
    except AccessDenied as exc:
        ctx.record("train", decision="deny", purpose=ctx.spec.purpose, epsilon=float(ctx.spec.training.epsilon),
                   reason=str(exc)[:500])
        raise


def _binding_unchanged(ctx: RunContext, stage: str) -> None:
    """Refuse to go on if an admin changed the dataset's privacy unit since admission.

    Why: the unit can be set on a dataset without versions, so a `policy bind`
    racing a run (the CLI serializes them with the workspace lock; library and
    service callers do not) would let the run reserve and train on the old
    unit's ledger while every later run charges a fresh cap on the new one, and
    the model's guarantee would be per row for data that is per patient. Once a
    version is stored the unit can no longer change, so a check after storing
    closes the window."""
    from governance.storage.store import Dataset

    with ctx.ws.session() as s:
        row = s.query(Dataset.privacy_unit, Dataset.lineage_id).filter(Dataset.id == ctx.dataset.id).one_or_none()
    if row is not None and (row[0], row[1]) == (ctx.dataset.privacy_unit, ctx.dataset.lineage_id):
        return
    now = "gone" if row is None else f"`{row[0] or 'row'}`"
    reason = (f"the privacy unit bound to `{ctx.dataset.name}` changed during the run (`{ctx.dataset.unit}` at "
              f"admission, now {now}; {stage}); run the pipeline again")
    ctx.record("run", decision="deny", purpose=ctx.spec.purpose, reason=reason[:500])
    raise AccessDenied(reason)


def _start(ws: Workspace, spec: PipelineSpec, identity: Identity, auth: Authorization, run_uid: str) -> RunContext:
    from governance.storage.store import Run

    with ws.session() as s:
        if s.query(Run).filter(Run.run_uid == run_uid).one_or_none() is None:
            s.add(Run(run_uid=run_uid, pipeline=spec.name, dataset_name=spec.dataset, principal=identity.name,
                      purpose=spec.purpose))
    ctx = RunContext(ws=ws, spec=spec, run_uid=run_uid, identity=identity, dataset=auth.dataset, policy=auth.policy,
                     record=AuditRecorder(ws, identity.name, spec.dataset))
    from governance.evidence import lineage

    lineage.run_started(ws, _lineage_facts(ctx))  # never raises; a failed delivery is audited as lineage_error
    return ctx


def _lineage_facts(ctx: RunContext) -> Any:
    """The run's public declarations, for its OpenLineage events (governance/evidence/lineage.py)."""
    from governance.evidence.lineage import LineageRun

    spec = ctx.spec
    src = spec.source

    def where(rel: str) -> Path:  # a path ingest would refuse is still named, as written, never raised here
        try:
            return spec.resolve(rel).resolve()
        except (PrivgovError, OSError, ValueError):
            return Path(rel)

    paths = [] if src.sample else [p for p in (src.path, src.test_path) if p]
    sources = tuple(("file", str(where(p))) for p in paths) or (("privgov-sample", str(src.sample)),)
    return LineageRun(
        run_uid=ctx.run_uid, pipeline=spec.name, dataset=ctx.dataset.name, principal=ctx.identity.name, sources=sources,
        suite=where(spec.quality.suite) if spec.quality else None,
        engine=("gx-spark" if spec.engine == "spark" else spec.quality.engine) if spec.quality else None, deid_steps=list(spec.deid.steps),
        require_k=spec.deid.require_k, policy_sha256=ctx.dataset.policy_hash, privacy_unit=ctx.dataset.unit,
        epsilon_target=None, delta=float(spec.training.delta) if spec.training else None,
        training=spec.training is not None)


# --------------------------------------------------------------------------- the run
def run_pipeline(ws: Workspace, spec: PipelineSpec, token: str | None, progress: Progress | None = None,
                 run_uid: str | None = None, *, nproc: int = 1) -> RunSummary:
    """Run every declared stage; returns the summary (raises on failure after recording it).

    `run_uid` lets a caller that must find the run again without hearing back
    from it (a server job, after a crash) fix the id up front; it must be new.
    `nproc` > 1 trains with torch.distributed (`training.distributed`): this
    process stays rank 0 and keeps admission, the ledger and the audit log."""
    summary = RunSummary(run_uid=run_uid or uuid.uuid4().hex[:16], dataset=spec.dataset)
    timed = _Timer(summary, progress)
    identity, auth = timed("authenticate", lambda: admit(ws, spec, token))
    ctx = _start(ws, spec, identity, auth, summary.run_uid)
    return _guarded(ctx, summary, lambda: _body(ctx, summary, timed, nproc))


def _body(ctx: RunContext, summary: RunSummary, timed: _Timer, nproc: int = 1) -> None:
    spec = ctx.spec
    if spec.batch_rows is not None:  # constant-memory path: governance/run/streaming_stages.py
        from governance.data.streaming import parse_batch_rows
        from governance.run.streaming_stages import run_streaming

        batch_rows = parse_batch_rows(spec.batch_rows, f"pipeline `{spec.name}`: batch_rows")
        if batch_rows:
            run_streaming(ctx, summary, timed, batch_rows)
            return
    per_run_cap = None
    if spec.training:  # decided before any work, so a refused run stores nothing
        def decide_train() -> float | None:
            train_auth = decide_for(ctx.ws, ctx.identity, "train", spec.dataset, spec.purpose)
            _require_bound_budget(ctx, train_auth)
            training.require_cap(ctx)
            return _per_run_cap(ctx, train_auth.obligations)

        per_run_cap = timed("decide", decide_train)
    df = timed("ingest", lambda: stages.ingest(ctx)).frame
    summary.rows_ingested = len(df)
    # before validation, storage and the budget: a direct identifier left in clear stops the run here
    timed("pii_gate", lambda: pii_gate.run_gate(ctx, df, sink=summary.pii_findings))
    like = None
    if spec.engine == "spark":  # from here on the frame is a Spark DataFrame (docs/spark.md)
        from governance.data.spark.store import timestamp_types
        from governance.run import spark_stages

        like = timestamp_types(df)
        df = timed("spark", lambda: spark_stages.to_spark(ctx, df))
    steps: list[dict[str, Any]] = []
    validation_ids: list[int] = []
    if spec.quality:
        raw = timed("validate", lambda: stages.validate(ctx, df, "raw"))
        summary.raw_validation_success = raw.success
        validation_ids.append(raw.record_id)
    if spec.cleaning:
        cleaned = timed("clean", lambda: stages.clean(ctx, df))
        df, steps = cleaned.frame, steps + cleaned.steps
    held = Quarantined(kept=df, quarantine=None, rows=0, reasons={})
    if spec.quality:
        revalidated = timed("revalidate", lambda: stages.validate(ctx, df, "cleaned"))
        summary.clean_validation_success = revalidated.success
        validation_ids.append(revalidated.record_id)
        held = stages.quarantine(ctx, df, revalidated)
        df = held.kept
        summary.rows_quarantined, summary.quarantine_reasons = held.rows, dict(held.reasons)
    deid = timed("deidentify", lambda: stages.deidentify(ctx, df))
    df, steps, summary.k_anonymity = deid.frame, steps + deid.steps, deid.k_anonymity
    summary.rows_clean = stages.count(df)
    meta: dict[str, Any] = {"pipeline": spec.name, "run_uid": ctx.run_uid,
                            "pii_findings": [dict(f) for f in summary.pii_findings]}
    reservation = None
    if spec.training:
        _binding_unchanged(ctx, "before reserving budget")
        meta.update(training.split_meta(ctx, stages.for_split(ctx, df)))
        reservation = timed("reserve", lambda: training.reserve(ctx, [str(c) for c in df.columns], meta, per_run_cap))
        summary.epsilon_target, summary.delta = reservation.epsilon, reservation.delta
    try:
        stored = timed("encrypt", lambda: stages.store(ctx, df, held, steps, meta, summary.clean_validation_success,
                                                          validation_ids, like=like))
    except BaseException:
        if reservation is not None:  # nothing was stored or decrypted: the reservation can go
            ctx.ws.ledger.release(ctx.run_uid)
        raise
    summary.version, summary.quarantine_version = stored.version, stored.quarantine_version
    df = held = deid = None  # free the plaintext before training decrypts the stored version
    if reservation is not None:
        try:
            _binding_unchanged(ctx, "after storing, before training")
        except AccessDenied:
            ctx.ws.ledger.release(ctx.run_uid)  # the stored version was never decrypted
            raise
        trained = timed("train", lambda: training.train(ctx, stored, reservation, nproc=nproc))
        summary.epsilon_spent, summary.metrics = trained.epsilon_spent, trained.metrics


def resume_pipeline(ws: Workspace, spec: PipelineSpec, token: str | None, run_uid: str,
                    progress: Progress | None = None, *, nproc: int = 1) -> RunSummary:
    """Finish a training run that died after reserving budget (`privgov run --resume`).

    Ingest, quality and storage are not repeated: the run's stored version is
    trained on from its last checkpoint, under the same policy checks, and the
    reservation it holds is committed - the ledger is charged once."""
    from governance.run.records import Stored
    from governance.storage.store import DatasetVersion, Run

    summary = RunSummary(run_uid=run_uid, dataset=spec.dataset)
    timed = _Timer(summary, progress)
    identity, auth = timed("authenticate", lambda: admit(ws, spec, token))
    if not spec.training:
        raise InputError(f"pipeline `{spec.name}` has no training block; nothing to resume")
    _require_own_run(ws, identity, spec, run_uid)
    with ws.session() as s:
        run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
        if run is None:
            raise InputError(f"--resume {run_uid}: no such run in this workspace (see `privgov audit log`)")
        if run.pipeline != spec.name or run.dataset_name != spec.dataset:
            raise InputError(f"--resume {run_uid}: the run belongs to pipeline `{run.pipeline}` on "
                             f"`{run.dataset_name}`, not `{spec.name}` on `{spec.dataset}`")
        if run.status not in ("running", "failed") or run.version_id is None:
            raise InputError(f"--resume {run_uid}: the run is {run.status}"
                             + ("" if run.version_id else " and stored no version") + "; nothing to resume")
        v = s.get(DatasetVersion, run.version_id)
        stored = Stored(version=v.version, version_id=v.id, row_count=int(v.row_count), content_hash=v.content_hash,
                        meta=dict(v.meta_json or {}), quarantine_version=None)
        columns = [c["name"] for c in v.schema_json]
        run.status, run.reason = "running", None
    ctx = _start(ws, spec, identity, auth, run_uid)
    summary.version, summary.rows_clean = stored.version, stored.row_count

    def body() -> None:
        from training.trainer import plan

        train_auth = timed("decide", lambda: decide_for(ws, identity, "train", spec.dataset, spec.purpose))
        _require_bound_budget(ctx, train_auth)
        _per_run_cap(ctx, train_auth.obligations)
        cfg = training.train_config(ctx, columns)
        n_plan, max_group = training.plan_size(stored.meta, cfg, spec.dataset)
        pplan = plan(n_plan, cfg, max_group_size=max_group)
        summary.epsilon_target, summary.delta = pplan.epsilon, spec.training.delta
        training.check_reservation(ctx, pplan.epsilon)
        reservation = Reservation(config=cfg, plan=pplan, epsilon=float(pplan.epsilon),
                                           delta=float(spec.training.delta), epsilon_cap=None)
        trained = timed("train", lambda: training.train(ctx, stored, reservation, resume=True, nproc=nproc))
        summary.epsilon_spent, summary.metrics = trained.epsilon_spent, trained.metrics

    return _guarded(ctx, summary, body)


def _require_own_run(ws: Workspace, identity: Identity, spec: PipelineSpec, run_uid: str) -> None:
    """Only the principal who started a run may resume it: resuming trains on the
    run's reservation and stores the model under the run (and its principal)."""
    from governance.storage.store import Run

    with ws.session() as s:
        owner = s.query(Run.principal).filter(Run.run_uid == run_uid).scalar()
    if owner is not None and owner != identity.name:
        record_event(ws, principal=identity.name, action="run", decision="deny", resource=spec.dataset,
                     purpose=spec.purpose, reason=f"resume of run {run_uid[:64]} started by `{owner}`"[:500],
                     details={"run_uid": run_uid[:64]})
        raise AccessDenied(f"--resume {shown(run_uid)}: the run was started by `{owner}`, not `{identity.name}`; "
                           "only its principal may resume it")


def _guarded(ctx: RunContext, summary: RunSummary, body: Callable[[], None]) -> RunSummary:
    """Run the stages; whatever happens, record the outcome, audit and checkpoint the log."""
    try:
        body()
        summary.status = "succeeded"
    except PrivgovError as exc:
        summary.status = "denied" if isinstance(exc, (AccessDenied, BudgetExceeded)) else "failed"  # refusals
        summary.reason = str(exc)
        _finish(ctx, summary, exc)
        raise
    except BaseException as exc:  # unexpected: record, then re-raise
        summary.status = "failed"
        summary.reason = f"{type(exc).__name__}: {exc}"
        _finish(ctx, summary, exc)
        raise
    _finish(ctx, summary)
    return summary


def _finish(ctx: RunContext, summary: RunSummary, error: BaseException | None = None) -> None:
    from governance.evidence import lineage
    from governance.storage.store import Run, utcnow

    # before the final checkpoint, so a `lineage_error`/`tracking_error` they record is covered by it
    lineage.run_finished(ctx.ws, _lineage_facts(ctx), status=summary.status, error=error,
                         epsilon_target=summary.epsilon_target)
    if summary.status == "succeeded" and summary.epsilon_spent is not None:
        from governance.evidence.tracking import log_training_run

        log_training_run(ctx.ws, ctx.run_uid, ctx.identity.name, ctx.dataset.name)  # never raises
    with ctx.ws.session() as s:
        run = s.query(Run).filter(Run.run_uid == summary.run_uid).one_or_none()
        if run is not None:
            run.status, run.reason, run.ended_at = summary.status, summary.reason, utcnow()
        ctx.ws.audit.record(s, principal=ctx.identity.name, action="run", decision="info", resource=ctx.dataset.name,
                            version=summary.version, reason=summary.status, details={"run_uid": summary.run_uid})
        ctx.ws.audit.checkpoint(s)
    if ctx.spec.report and summary.status == "succeeded":
        from governance.evidence.report import write_report

        out = Path(ctx.spec.report)  # relative to the working directory
        write_report(ctx.ws, out)
        summary.report_path = str(out)
