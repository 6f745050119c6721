"""The governed run: raw file → validated, cleaned, de-identified, encrypted
version → policy decision → budget reservation → DP training → evidence.

Why one runner: the order of the stages *is* the guarantee. Data is decrypted
for training only after an allow decision and a budget reservation, both
audited; every stage records counts, never values.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.storage import catalog
from governance.run.spec import PipelineSpec
from governance.data.splitting import SPLIT_COLUMN, split_for_training, train_split_stats
from governance.storage.store import Run, ValidationRecord, utcnow
from governance.workspace import Workspace
from privacy.errors import AccessDenied, BudgetExceeded, InputError, PrivgovError, QualityGateFailed

Progress = Callable[[str, str], None]


@dataclass
class RunSummary:
    run_uid: str
    dataset: str
    status: str = "running"
    reason: str | None = None
    version: int | None = None
    quarantine_version: int | None = None
    rows_ingested: int = 0
    rows_clean: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    raw_validation_success: bool | None = None
    clean_validation_success: bool | None = None
    epsilon_target: float | None = None
    epsilon_spent: float | None = None
    delta: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None
    k_anonymity: int | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)


def _label(r: Any) -> str:
    return f"{r.type}({r.column})" if r.column else r.type


def _blocking_ids(result: Any) -> set[Any]:
    """Rows failing an expectation that failed; rows tolerated by `mostly` stay."""
    ids: set[Any] = set()
    for r in result.failed:
        ids.update(r.failing_row_ids)
    return ids


def _reasons_by_row(result: Any) -> dict[Any, list[str]]:
    reasons: dict[Any, list[str]] = {}
    for r in result.failed:
        for rid in r.failing_row_ids:
            reasons.setdefault(rid, []).append(_label(r))
    return reasons


def _record_policy(session: Any, text: str, name: str) -> str:
    """Keep the exact policy text decisions were made under (content-addressed)."""
    import hashlib

    from governance.storage.store import PolicyRecord

    digest = hashlib.sha256(text.encode()).hexdigest()
    if session.query(PolicyRecord).filter(PolicyRecord.content_hash == digest).one_or_none() is None:
        session.add(PolicyRecord(name=str(name), content_hash=digest, text=text))
    return digest


def _noop(stage: str, message: str) -> None:  # pragma: no cover - default progress
    pass


class PipelineRunner:
    def __init__(self, ws: Workspace, spec: PipelineSpec, token: str | None, progress: Progress | None = None) -> None:
        self.ws = ws
        self.spec = spec
        self.token = token
        self.progress = progress or _noop
        self.summary = RunSummary(run_uid=uuid.uuid4().hex[:16], dataset=spec.dataset)
        self.principal_name = spec.principal
        self.roles: list[str] = []

    # ------------------------------------------------------------------ helpers
    def _audit(self, action: str, decision: str = "info", **kw: Any) -> None:
        with self.ws.session() as s:
            self.ws.audit.record(
                s, principal=self.principal_name, action=action, decision=decision, resource=self.spec.dataset, **kw
            )

    def _stage(self, name: str, fn: Callable[[], Any]) -> Any:
        self.progress(name, "start")
        t0 = time.perf_counter()
        try:
            result = fn()
        except BaseException:
            self.summary.stage_seconds[name] = round(time.perf_counter() - t0, 3)
            self.progress(name, "failed")
            raise
        self.summary.stage_seconds[name] = round(time.perf_counter() - t0, 3)
        self.progress(name, "done")
        return result

    def _decide(self, action: str, purpose: str | None, version: int | None = None):
        from policies.engine import Request, decide

        with self.ws.session() as s:
            ds = catalog.find_dataset(s, self.spec.dataset) if action != "ingest" else None
            tags = list(ds.tags) if ds is not None else list(self.spec.tags)
        request = Request(
            principal=self.principal_name,
            roles=self.roles,
            action=action,
            dataset=self.spec.dataset,
            tags=tags,
            purpose=purpose,
            now=utcnow(),
        )
        decision = decide(request, self.policy)
        self._audit(
            action,
            decision="allow" if decision.allowed else "deny",
            version=version,
            purpose=purpose,
            reason=decision.reason,
        )
        if not decision.allowed:
            raise AccessDenied(
                f"policy {Path(self.spec.policy).name} denies `{action}` on `{self.spec.dataset}` "
                f"for principal `{self.principal_name}` with purpose `{purpose}`: {decision.reason}"
            )
        return decision

    # ------------------------------------------------------------------ stages
    def authenticate(self) -> None:
        from governance.access.identity import authenticate
        from policies.schema import load_policy

        policy_path = self.spec.resolve(self.spec.policy)
        self.policy = load_policy(policy_path)
        self.policy_text = policy_path.read_text(encoding="utf-8")
        if not self.token:
            self._audit("authenticate", decision="deny", reason="no token given")
            raise AccessDenied("no API token: pass --token or set PRIVGOV_TOKEN")
        try:
            with self.ws.session() as s:
                principal = authenticate(s, self.token)
                self.roles = list(principal.roles or [])
                name = principal.name
        except AccessDenied as exc:
            self._audit("authenticate", decision="deny", reason=str(exc))
            raise
        if name != self.spec.principal:
            self.principal_name = name
            self._audit("authenticate", decision="deny", reason=f"token belongs to `{name}`, pipeline declares `{self.spec.principal}`")
            raise AccessDenied(f"the token belongs to `{name}` but the pipeline declares principal `{self.spec.principal}`")
        self._audit("authenticate", decision="allow")

    def ingest(self) -> pd.DataFrame:
        from governance.data.ingest import read_table

        self._decide("ingest", self.spec.ingest_purpose)
        src = self.spec.source
        rid = self.spec.row_id
        if src.sample:
            from governance.demo.sample_data import generate_clinic

            df = generate_clinic(src.rows, seed=src.seed)
            if rid not in df.columns:
                df.insert(0, rid, np.arange(len(df), dtype=np.int64))
        else:
            opts = src.csv.model_dump(exclude_none=True) if src.csv else None
            df = read_table(self.spec.resolve(src.path), row_id_column=rid, fmt=src.format, csv_options=opts)
            if src.test_path:
                test = read_table(self.spec.resolve(src.test_path), row_id_column=rid, fmt=src.format, csv_options=opts)
                test[rid] = test[rid] + (int(df[rid].max()) + 1 if len(df) else 0)
                df[SPLIT_COLUMN] = "train"
                test[SPLIT_COLUMN] = "test"
                df = pd.concat([df, test], ignore_index=True)
        for col in [c for c in [self.spec.privacy_unit] if c]:
            if col not in df.columns:
                raise InputError(f"pipeline `{self.spec.name}`: privacy_unit column `{col}` is not in the data")
        self.summary.rows_ingested = len(df)
        self._audit("ingest", details={"rows": int(len(df)), "columns": int(df.shape[1])}, purpose=self.spec.ingest_purpose)
        return df

    def validate(self, df: pd.DataFrame, stage: str):
        from governance.data.quality import load_suite, validate

        suite = load_suite(self.spec.resolve(self.spec.quality.suite))
        result = validate(df, suite, row_id_column=self.spec.row_id, engine=self.spec.quality.engine)
        failing = len(_blocking_ids(result))
        with self.ws.session() as s:
            s.add(
                ValidationRecord(
                    dataset_name=self.spec.dataset,
                    stage=stage,
                    suite_name=str(suite.get("name", "suite")),
                    success=bool(result.success),
                    evaluated=len(result.results),
                    failed_expectations=sum(1 for r in result.results if not r.success),
                    failing_rows=failing,
                    result_json=result.to_dict(),
                )
            )
        self._audit(
            "validate",
            decision="info",
            purpose=self.spec.ingest_purpose,
            details={"stage": stage, "success": bool(result.success), "failing_rows": failing},
        )
        return result

    def clean(self, df: pd.DataFrame):
        from governance.data.cleaning import apply_steps, build_steps

        steps = build_steps(self.spec.cleaning)
        cleaned, reports = apply_steps(df, steps, row_id_column=self.spec.row_id)
        return cleaned, [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in reports]

    def deidentify(self, df: pd.DataFrame):
        from privacy.deid import apply_deid, enforce_no_direct_identifiers, require_k

        d = self.spec.deid
        out, report = apply_deid(df, d.steps, key_for_domain=self.ws.keyring.hmac_key)
        transformed = {r["column"] for r in report if r.get("action") in ("drop", "pseudonymize")}
        enforce_no_direct_identifiers(out, d.direct_identifiers, transformed=transformed)
        if d.require_k and d.quasi_identifiers:
            if d.suppress_below_k:
                sizes = out.groupby(d.quasi_identifiers, dropna=False)[self.spec.row_id].transform("size")
                small = sizes < d.require_k
                report.append({"step": "suppress_below_k", "column": ",".join(d.quasi_identifiers),
                               "action": "suppress_rows", "k": d.require_k, "rows_suppressed": int(small.sum()),
                               "suppressed_row_ids": [int(x) for x in out.loc[small, self.spec.row_id]]})
                out = out[~small].reset_index(drop=True)
            k_report = require_k(out, d.quasi_identifiers, d.require_k)
            self.summary.k_anonymity = int(k_report.k)
        return out, report

    # ------------------------------------------------------------------ run
    def run(self) -> RunSummary:
        spec = self.spec
        with self.ws.session() as s:
            s.add(Run(run_uid=self.summary.run_uid, pipeline=spec.name, dataset_name=spec.dataset,
                      principal=spec.principal, purpose=spec.purpose))

        def body() -> None:
            self._stage("authenticate", self.authenticate)
            df = self._stage("ingest", self.ingest)
            steps_log: list[dict[str, Any]] = []
            if spec.quality:
                raw = self._stage("validate", lambda: self.validate(df, "raw"))
                self.summary.raw_validation_success = bool(raw.success)
            if spec.cleaning:
                df, clean_reports = self._stage("clean", lambda: self.clean(df))
                steps_log.extend(clean_reports)
            quarantine = None
            if spec.quality:
                res = self._stage("revalidate", lambda: self.validate(df, "cleaned"))
                self.summary.clean_validation_success = bool(res.success)
                blocking = _blocking_ids(res)
                if blocking:
                    if spec.quality.on_failure == "fail":
                        raise QualityGateFailed(
                            f"suite {spec.quality.suite}: {len(blocking)} rows still fail after cleaning"
                        )
                    mask = df[spec.row_id].isin(blocking)
                    share = float(mask.mean())
                    if share > spec.quality.max_quarantine_share:
                        raise QualityGateFailed(
                            f"suite {spec.quality.suite}: {share:.1%} of rows fail after cleaning "
                            f"(more than max_quarantine_share {spec.quality.max_quarantine_share:.0%}); fix the source or the cleaning steps"
                        )
                    reasons = _reasons_by_row(res)
                    quarantine = df[mask].copy()
                    quarantine["quarantine_reason"] = quarantine[spec.row_id].map(
                        lambda r: "; ".join(reasons.get(r, ["failed validation"]))
                    )
                    df = df[~mask].reset_index(drop=True)
                    self.summary.rows_quarantined = int(mask.sum())
                    for r in res.failed:
                        self.summary.quarantine_reasons[_label(r)] = int(r.unexpected_count)
            df, deid_report = self._stage("deidentify", lambda: self.deidentify(df))
            steps_log.extend({"stage": "deid", **r} for r in deid_report)
            self.summary.rows_clean = len(df)
            self._stage("encrypt", lambda: self._store(df, quarantine, steps_log))
            del df, quarantine
            if spec.training:
                self._stage("train", self.train)

        return self._guarded(body)

    def resume(self, run_uid: str) -> RunSummary:
        """Finish a training run that died after reserving budget (`privgov run --resume`).

        Ingest, quality and storage are not repeated: the run's stored version is
        trained on from its last checkpoint, under the same policy checks, and
        the reservation it holds is committed - the ledger is charged once.
        """
        from governance.storage.store import DatasetVersion

        spec = self.spec
        with self.ws.session() as s:
            run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
            if run is None:
                raise InputError(f"--resume {run_uid}: no such run in this workspace (see `privgov audit log`)")
            if run.pipeline != spec.name or run.dataset_name != spec.dataset:
                raise InputError(f"--resume {run_uid}: the run belongs to pipeline `{run.pipeline}` on "
                                 f"`{run.dataset_name}`, not `{spec.name}` on `{spec.dataset}`")
            if run.status not in ("running", "failed") or run.version_id is None:
                raise InputError(f"--resume {run_uid}: the run is {run.status}"
                                 + ("" if run.version_id else " and stored no version") + "; nothing to resume")
            version = s.get(DatasetVersion, run.version_id)
            ds = catalog.find_dataset(s, spec.dataset)
            self.summary.run_uid = run_uid
            self.summary.version = version.version
            self.summary.rows_clean = int(version.row_count)
            self.version_id, self.lineage_id = version.id, ds.lineage_id
            self.unit_count, self.row_count = version.unit_count, version.row_count
            self.version_meta = dict(version.meta_json or {})
            run.status, run.reason = "running", None
        if not spec.training:
            raise InputError(f"pipeline `{spec.name}` has no training block; nothing to resume")

        def body() -> None:
            self._stage("authenticate", self.authenticate)
            self._stage("train", lambda: self.train(resume_uid=run_uid))

        return self._guarded(body)

    def _guarded(self, body: Callable[[], None]) -> RunSummary:
        """Run the stages; whatever happens, record the outcome, audit and checkpoint the log."""
        try:
            body()
            self.summary.status = "succeeded"
        except PrivgovError as exc:
            self.summary.status = "denied" if isinstance(exc, AccessDenied) else "failed"
            self.summary.reason = str(exc)
            self._finish()
            raise
        except BaseException as exc:  # unexpected: record, then re-raise
            self.summary.status = "failed"
            self.summary.reason = f"{type(exc).__name__}: {exc}"
            self._finish()
            raise
        self._finish()
        return self.summary

    def _store(self, df: pd.DataFrame, quarantine: pd.DataFrame | None, steps_log: list[dict[str, Any]]) -> None:
        spec = self.spec
        with self.ws.session() as s:
            ds = catalog.get_or_create_dataset(
                s, spec.dataset, privacy_unit=spec.privacy_unit, row_id_column=spec.row_id, tags=spec.tags
            )
            ds.policy_hash = _record_policy(s, self.policy_text, getattr(self.policy, "name", spec.policy))
            meta: dict[str, Any] = {"pipeline": spec.name, "run_uid": self.summary.run_uid}
            if spec.training:
                t = spec.training
                train, _ = self._split(df, t.test_fraction, t.seed)
                meta["train_split"] = train_split_stats(train, spec.privacy_unit)
                del train
            status = "passed" if self.summary.clean_validation_success in (True, None) or quarantine is not None else "failed"
            row = catalog.write_version(self.ws, s, ds, df, kind="data", steps=steps_log, meta=meta, validation_status=status)
            self.summary.version = row.version
            self.version_id = row.id
            self.lineage_id = ds.lineage_id
            self.unit_count = row.unit_count
            self.row_count = row.row_count
            self.version_meta = meta
            s.query(ValidationRecord).filter(
                ValidationRecord.dataset_name == spec.dataset, ValidationRecord.version_id.is_(None)
            ).update({"version_id": row.id})
            s.query(Run).filter(Run.run_uid == self.summary.run_uid).update({"version_id": row.id})
            if quarantine is not None and len(quarantine):
                q = catalog.write_version(
                    self.ws, s, ds, quarantine, kind="quarantine", parent_id=row.id,
                    meta={"reasons": self.summary.quarantine_reasons, "run_uid": self.summary.run_uid},
                    validation_status="failed",
                )
                self.summary.quarantine_version = q.version
            self.ws.audit.record(
                s, principal=self.principal_name, action="store", decision="info", resource=spec.dataset,
                version=row.version, purpose=spec.ingest_purpose,
                details={"rows": int(row.row_count), "content_hash": row.content_hash,
                         "data_key_id": int(row.data_key_id or 0),
                         "quarantined_rows": int(self.summary.rows_quarantined)},
            )

    def train(self, resume_uid: str | None = None) -> None:
        """Decide, reserve, decrypt, train (checkpointing), commit, store the model.

        With `resume_uid` the run continues from its last encrypted checkpoint
        under the reservation it already holds: the ledger is charged once.
        """
        from policies.engine import budget_for
        from training.trainer import plan

        spec = self.spec
        t = spec.training
        decision = self._decide("train", spec.purpose, version=self.summary.version)
        cap = budget_for(self.policy, spec.dataset)
        if cap is None:
            raise AccessDenied(f"policy {Path(spec.policy).name} sets no privacy budget for `{spec.dataset}`; training is refused")
        cap_eps, cap_delta = cap
        if decision.obligations.epsilon_cap is not None and t.epsilon > decision.obligations.epsilon_cap:
            raise AccessDenied(
                f"target epsilon {t.epsilon} exceeds the per-run cap {decision.obligations.epsilon_cap} granted to `{self.principal_name}`"
            )
        cfg = self._train_config()
        unit = spec.privacy_unit or "row"
        n_plan, max_group = self._plan_size(cfg)
        privacy_plan = plan(n_plan, cfg, max_group_size=max_group)
        self.summary.epsilon_target = privacy_plan.epsilon
        self.summary.delta = t.delta
        if resume_uid is None:
            self.ws.ledger.set_cap(self.lineage_id, unit, cap_eps, cap_delta)
            orders, rdp = privacy_plan.ledger_curve()
            try:
                self.ws.ledger.reserve(
                    lineage_id=self.lineage_id, unit=unit, run_uid=self.summary.run_uid,
                    epsilon=privacy_plan.epsilon, delta=t.delta, orders=orders, rdp=rdp,
                )
            except BudgetExceeded as exc:
                self._audit("budget_reserve", decision="deny", epsilon=privacy_plan.epsilon, purpose=spec.purpose,
                            version=self.summary.version, reason=str(exc)[:500])
                raise BudgetExceeded(f"dataset `{spec.dataset}`: {exc}; see `privgov budget show {spec.dataset}`") from None
            self._audit("budget_reserve", decision="allow", epsilon=privacy_plan.epsilon, purpose=spec.purpose,
                        version=self.summary.version,
                        details={"sigma": float(privacy_plan.sigma), "steps": int(privacy_plan.steps),
                                 "group_size": int(privacy_plan.group_size)})
        else:
            self._check_reservation(unit, privacy_plan.epsilon)
        # Only now is the stored version decrypted.
        with self.ws.session() as s:
            ds = catalog.find_dataset(s, spec.dataset)
            row = catalog.get_version(s, ds, self.summary.version)
            dataset_hash = row.content_hash
            data = catalog.read_version(self.ws, s, ds, row)
        self._audit("read", decision="allow", purpose=spec.purpose, version=self.summary.version,
                    details={"rows": int(len(data)), "for": "train"})
        train_df, test_df = self._split(data, t.test_fraction, t.seed)
        del data
        result = self._train_with_checkpoints(train_df, test_df, cfg, privacy_plan, resume_uid, dataset_hash)
        orders, rdp = privacy_plan.ledger_curve()
        self.ws.ledger.commit(run_uid=self.summary.run_uid, epsilon=result.epsilon_spent, orders=orders, rdp=rdp)
        self.summary.epsilon_spent = result.epsilon_spent
        self.summary.metrics = result.metrics
        self._store_model(result, cfg, unit)
        from governance.run import checkpoints

        checkpoints.drop(self.ws, self.summary.run_uid)

    def _check_reservation(self, unit: str, epsilon: float) -> None:
        """A resumed run must still hold its reservation, for the same target."""
        status = self.ws.ledger.status(self.lineage_id, unit)
        entry = next((r for r in status.runs if r.run_uid == self.summary.run_uid), None)
        if entry is None or entry.state != "reserved":
            state = "no reservation" if entry is None else f"its reservation is {entry.state}"
            raise InputError(f"run {self.summary.run_uid}: {state}; only a run that reserved budget and did not "
                             "commit can be resumed")
        if abs(float(entry.target_epsilon or entry.epsilon) - epsilon) > 1e-9:
            raise InputError(
                f"run {self.summary.run_uid}: the pipeline's training settings give epsilon {epsilon:.6g} but the run "
                f"reserved {entry.target_epsilon:.6g}; resume with the pipeline file the run started with"
            )
        self._audit("budget_resume", decision="allow", epsilon=float(epsilon), purpose=self.spec.purpose,
                    version=self.summary.version, details={"run_uid": self.summary.run_uid})

    def _train_with_checkpoints(self, train_df: pd.DataFrame, test_df: pd.DataFrame, cfg: Any, privacy_plan: Any,
                                resume_uid: str | None, dataset_hash: str):
        from governance.run import checkpoints
        from training.trainer import checkpoint_bytes, finish_run, resume, start_run

        t0 = time.time()
        if resume_uid is None:
            run = start_run(train_df, cfg, privacy_plan)
        else:
            with self.ws.session() as s:
                ck = checkpoints.latest(s, resume_uid)
                if ck is None:
                    raise InputError(f"run {resume_uid}: no checkpoint was stored (checkpoint_every_epochs: 0, or it "
                                     "died before its first epoch); its reservation stays charged")
                raw = checkpoints.load(self.ws, s, ck)
            run = resume(raw, train_df, cfg, privacy_plan)
            self._audit("resume", purpose=self.spec.purpose, version=self.summary.version,
                        details={"run_uid": resume_uid, "step": int(run.steps_done), "steps": int(privacy_plan.steps)})
        every = self.spec.training.checkpoint_every_epochs * run.steps_per_epoch
        on_epoch = self._held_out_accuracy(run, test_df)
        while run.steps_done < privacy_plan.steps:
            stop = (run.steps_done // every + 1) * every if every else None
            run.run(stop_after=stop, progress=on_epoch)
            if every and run.steps_done < privacy_plan.steps:
                checkpoints.save(self.ws, self.summary.run_uid, checkpoint_bytes(run), run.steps_done,
                                 privacy_plan.steps)
        return finish_run(run, test_df, cfg, t0=t0, dataset_hash=dataset_hash)

    @staticmethod
    def _held_out_accuracy(run: Any, test_df: pd.DataFrame) -> Callable[[dict[str, Any]], None] | None:
        """Per-epoch accuracy on the held-out split, for the report's training curves.

        Descriptive only: nothing is selected or stopped on it (the final iterate
        is the model), so it does not touch the training guarantee."""
        from training.trainer import predict_proba

        if test_df is None or not len(test_df):
            return None
        y = run.encoder.transform(test_df)[2]

        def on_epoch(rec: dict[str, Any]) -> None:
            prob = predict_proba(run.model, run.encoder, test_df, run.device)
            rec["test_accuracy"] = float(((prob >= 0.5) == (y == 1)).mean())

        return on_epoch

    def _store_model(self, result: Any, cfg: Any, unit: str) -> None:
        """The model bundle (weights + encoder + config) is stored encrypted, bound to the run."""
        from training.model_bundle import bundle_bytes

        spec = self.spec
        card = dict(result.model_card)
        card.update({"dataset": spec.dataset, "dataset_version": self.summary.version, "privacy_unit": unit,
                     "run_uid": self.summary.run_uid})
        with self.ws.session() as s:
            ref = self.ws.objects.put_bytes(s, bundle_bytes(result, cfg),
                                            associated=f"privgov:model;run={self.summary.run_uid}".encode())
            run = s.query(Run).filter(Run.run_uid == self.summary.run_uid).one()
            run.epsilon = result.epsilon_spent
            run.delta = spec.training.delta
            run.metrics_json = {"metrics": result.metrics, "per_group": result.per_group, "history": result.history}
            run.model_card_json = card
            run.model_blob_hash = ref.blob_hash
            run.model_data_key_id = ref.data_key_id
            s.flush()
            catalog.add_edge(s, "version", self.version_id, "run", run.id, "trained")
            self.ws.audit.record(s, principal=self.principal_name, action="train", decision="info", resource=spec.dataset,
                                 version=self.summary.version, purpose=spec.purpose, epsilon=float(result.epsilon_spent),
                                 details={"accuracy": float(result.metrics.get("accuracy", float("nan"))),
                                          "steps": int(result.steps)})

    def _train_config(self):
        """Map the spec's training block to the trainer's config; features default to
        every stored column except the target, row id, split marker and privacy unit."""
        from training.trainer import TrainConfig

        spec, t = self.spec, self.spec.training
        with self.ws.session() as s:
            ds = catalog.find_dataset(s, spec.dataset)
            columns = [c["name"] for c in catalog.get_version(s, ds, self.summary.version).schema_json]
        excluded = {t.target, spec.row_id, SPLIT_COLUMN, spec.privacy_unit}
        features = t.features or [c for c in columns if c not in excluded]
        missing = [c for c in [t.target, *features] if c not in columns]
        if missing:
            raise InputError(f"pipeline `{spec.name}`: training column(s) {missing} are not in the stored version")
        extra = {k: v for k, v in {"lr": t.lr, "optimizer": t.optimizer}.items() if v is not None}
        return TrainConfig(
            target=t.target, positive_label=None if t.positive is None else str(t.positive), features=features,
            categorical=t.categorical, model=t.model, hidden=t.hidden, epsilon=t.epsilon, delta=t.delta,
            epochs=t.epochs, batch_size=t.batch_size, max_grad_norm=t.max_grad_norm, device=t.device, seed=t.seed,
            unit_column=spec.privacy_unit, sensitive_columns=t.sensitive_columns, test_fraction=t.test_fraction,
            bounding=t.bounding, **extra, **t.options,
        )

    def _plan_size(self, cfg: Any) -> tuple[int, int]:
        """(units the sampler draws from, max rows per unit) from metadata alone."""
        split = self.version_meta.get("train_split")
        if not split:
            raise InputError(f"dataset `{self.spec.dataset}` v{self.summary.version}: stored without training "
                             "split metadata; re-run the pipeline to store a trainable version")
        if cfg.bounding == "group" and cfg.unit_column:
            return int(split["rows"]), int(split["max_rows_per_unit"])
        return int(split["units"]), 1

    def _split(self, data: pd.DataFrame, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        return split_for_training(data, self.spec.privacy_unit, test_fraction, seed)

    def _finish(self) -> None:
        with self.ws.session() as s:
            run = s.query(Run).filter(Run.run_uid == self.summary.run_uid).one_or_none()
            if run is not None:
                run.status = self.summary.status
                run.reason = self.summary.reason
                run.ended_at = utcnow()
            self.ws.audit.record(s, principal=self.principal_name, action="run", decision="info",
                                 resource=self.spec.dataset, version=self.summary.version,
                                 reason=self.summary.status,
                                 details={"run_uid": self.summary.run_uid})
            self.ws.audit.checkpoint(s)
        if self.spec.report and self.summary.status == "succeeded":
            from governance.evidence.report import write_report

            out = Path(self.spec.report)  # relative to the working directory
            write_report(self.ws, out)
            self.summary.report_path = str(out)
