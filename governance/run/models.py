"""Using and auditing stored models: `privgov predict` and `privgov audit-model`.

Why here and not in `training/`: both are governed operations. A model is
stored encrypted and bound to its run; it is decrypted only after the
principal is allowed the action under the policy its dataset was stored
with, and every use is audited. The canary audit trains once more on the real
rows, so it reserves and commits privacy budget like any training run; so
does the white-box audit (`--whitebox`), which retrains once with gradient
canaries.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.storage import aad, catalog
from governance.storage.objectstore import BlobRef
from governance.storage.store import DatasetVersion, Run, utcnow
from governance.workspace import Workspace
from privacy.errors import AccessDenied, BudgetExceeded, InputError


def _find_run(s: Any, run_uid: str) -> Run:
    run = s.query(Run).filter(Run.run_uid == run_uid).one_or_none()
    if run is None:
        raise InputError(f"run {run_uid}: no such run in this workspace (see `privgov dataset show NAME`)")
    if run.model_blob_hash is None:
        raise InputError(f"run {run_uid}: no stored model (the run is {run.status}); only finished training runs have one")
    if run.affected_by_erasure:
        raise AccessDenied(f"run {run_uid}: its model was trained on an erased dataset version and is withdrawn")
    return run


def authorize_model_use(ws: Workspace, token: str | None, action: str, run_uid: str,
                        purpose: str | None) -> tuple[Any, str]:
    """(Authorization, purpose) for using a run's model, decided under its dataset's bound policy.

    Authenticates before anything about the run is looked up. An unknown run is
    denied (and audited) with the same words as a forbidden one, without
    deciding under any dataset's policy: a dataset an admin happened to name
    `run:<id>` must not stand in for a run that does not exist. A model
    withdrawn by an erasure is refused after the decision, and that refusal is
    audited too. `purpose=None` means the purpose the run trained for."""
    from governance.access.authorize import authenticate, decide_for, denied_message, record_decision
    from governance.storage.store import Run

    resource = f"run:{run_uid}"[:500]
    identity = authenticate(ws, token, action=action, resource=resource, purpose=purpose)
    with ws.session() as s:
        row = (s.query(Run.dataset_name, Run.purpose, Run.affected_by_erasure)
               .filter(Run.run_uid == run_uid).one_or_none())
    if row is None:
        record_decision(ws, principal=identity.name, action=action, decision="deny", resource=resource,
                        purpose=purpose, reason="no such run")
        raise AccessDenied(denied_message(identity.name, action, resource, purpose))
    dataset, run_purpose, withdrawn = row
    purpose = purpose if purpose is not None else run_purpose
    auth = decide_for(ws, identity, action, dataset, purpose, details={"run_uid": run_uid[:64]})
    if withdrawn:
        reason = f"run {run_uid}: its model was trained on an erased dataset version and is withdrawn"
        record_decision(ws, principal=identity.name, action=action, decision="deny", resource=dataset,
                        purpose=purpose, reason=reason[:500], details={"run_uid": run_uid[:64]})
        raise AccessDenied(reason)
    return auth, purpose


def load_run_model(ws: Workspace, s: Any, run_uid: str):
    """(Run row, ModelBundle) - decrypts the model blob bound to this run id."""
    from training.model_bundle import load_bundle

    run = _find_run(s, run_uid)
    ref = BlobRef(blob_hash=run.model_blob_hash, data_key_id=int(run.model_data_key_id), content_hash="", size=0)
    raw = ws.objects.get_bytes(s, ref, associated=aad.model(run_uid))
    return run, load_bundle(raw, source=f"model of run {run_uid}")


# --------------------------------------------------------------------------- predict
@dataclass
class PredictSummary:
    rows: int
    target: str
    positive_label: str
    predicted_positive: int
    unseen_categories: dict[str, float]  # column -> share of non-missing values not seen in training
    out: Path


def unseen_shares(encoder: Any, df: pd.DataFrame) -> dict[str, float]:
    """Share of non-missing values per categorical column the model never saw (they map to 'unknown')."""
    out = {}
    for c in encoder.categorical:
        col = df[c].dropna().astype(str)
        if len(col):
            share = float((~col.isin(set(encoder.vocabularies[c]))).mean())
            if share > 0:
                out[c] = share
    return out


@dataclass
class Scored:
    """A frame scored by a run's model: the row ids and scores only, never the input's features."""

    result: pd.DataFrame  # row id column (when the input has it), `probability`, `prediction`
    target: str
    positive_label: str
    dataset: str
    unseen_categories: dict[str, float]


def score_frame(ws: Workspace, run_uid: str, frame: pd.DataFrame, threshold: float = 0.5) -> Scored:
    """Score an in-memory frame with the run's model (the file and HTTP paths both end here).

    The caller has already authorized `predict` on the run's dataset."""
    from training.model_bundle import predict_proba

    if not 0 < threshold < 1:
        raise InputError(f"--threshold: expected a number in (0, 1), got {threshold}")
    with ws.session() as s:
        run, bundle = load_run_model(ws, s, run_uid)
        row_id = catalog.find_dataset(s, run.dataset_name).row_id_column
        dataset = run.dataset_name
    prob = predict_proba(bundle, frame)
    result = pd.DataFrame({row_id: frame[row_id].to_numpy()} if row_id in frame.columns else {})
    result["probability"] = prob
    result["prediction"] = (prob >= threshold).astype(np.int64)
    return Scored(result=result, target=bundle.encoder.target, positive_label=bundle.encoder.positive_label,
                  dataset=dataset, unseen_categories=unseen_shares(bundle.encoder, frame))


def frame_from_records(rows: list[dict[str, Any]], row_id: str) -> pd.DataFrame:
    """Rows sent as JSON records, with the same row id rules as a file (kept if valid, else assigned)."""
    from governance.data.ingest import ensure_row_ids

    return ensure_row_ids(pd.DataFrame.from_records(rows), row_id, source="body.rows")


def frame_from_upload(raw: bytes, fmt: str, row_id: str) -> pd.DataFrame:
    """An uploaded CSV or Parquet body, read in memory like `privgov predict` reads its file."""
    from governance.data.ingest import read_table_bytes

    return read_table_bytes(raw, f"body ({fmt})", fmt=fmt, row_id_column=row_id)


def row_id_column(ws: Workspace, run_uid: str) -> str:
    """The row id column of the run's dataset (what an input's ids are read as)."""
    with ws.session() as s:
        return catalog.find_dataset(s, _find_run(s, run_uid).dataset_name).row_id_column


def audit_predict(ws: Workspace, principal: str, run_uid: str, dataset: str, purpose: str, rows: int,
                  input_sha256: str, **details: Any) -> None:
    """One `predict` info event per scoring call (counts and the input's hash, never values)."""
    with ws.session() as s:
        ws.audit.record(s, principal=principal, action="predict", decision="info", resource=dataset,
                        purpose=purpose, details={"run_uid": run_uid, "rows": rows, "input_sha256": input_sha256,
                                                  **details})
        ws.audit.checkpoint(s)


def predict(ws: Workspace, principal: str, run_uid: str, data: Path, out: Path, purpose: str,
            threshold: float = 0.5) -> PredictSummary:
    """Score `data` with the run's model and write `out` (CSV or Parquet) atomically.

    The caller has already authorized `predict` on the run's dataset. Output:
    the input's row id column (when present), `probability` of the positive
    class and `prediction` (1/0). No input feature values are copied out.
    """
    from governance.storage.atomic_write import write_frame
    from governance.data.ingest import read_table

    if not 0 < threshold < 1:
        raise InputError(f"--threshold: expected a number in (0, 1), got {threshold}")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"--out {out}: expected a .csv or .parquet file name")
    frame = read_table(Path(data), row_id_column=row_id_column(ws, run_uid))
    scored = score_frame(ws, run_uid, frame, threshold)
    write_frame(scored.result, out)
    summary = PredictSummary(rows=len(scored.result), target=scored.target, positive_label=scored.positive_label,
                             predicted_positive=int(scored.result["prediction"].sum()),
                             unseen_categories=scored.unseen_categories, out=out)
    audit_predict(ws, principal, run_uid, scored.dataset, purpose, summary.rows, _sha256(Path(data)))
    return summary


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- audit-model
def _canary_refusal(auth: Any, epsilon: float) -> str | None:
    """Why the bound policy no longer lets the canary audit retrain at `epsilon`, or None."""
    from policies.engine import budget_for

    cap = auth.obligations.epsilon_cap
    if cap is not None and epsilon > cap:
        return (f"the canary audit retrains at epsilon {epsilon:g}, above the per-run cap {cap:g} granted to "
                f"`{auth.identity.name}`")
    if budget_for(auth.policy, auth.dataset.name) is None:
        return f"the policy bound to `{auth.dataset.name}` declares no privacy budget for it; retraining is refused"
    return None


WHITEBOX_CANARIES = 1000
WHITEBOX_FIELDS = ("method", "canaries", "epsilon_lower_bound", "claimed_epsilon", "confidence", "k_pos", "k_neg",
                   "guesses", "correct", "candidates", "correction", "passed")


def audit_model(ws: Workspace, principal: str, run_uid: str, purpose: str, *, canaries: int | None = None,
                seed: int = 0, max_members: int = 20000, skip_canary: bool = False, whitebox: bool = False,
                device: str = "auto", auth: Any = None) -> dict[str, Any]:
    """Membership inference on the stored model + one retraining audit; stored on the run.

    The retraining audit is the black-box one-run canary audit (canary records
    scored by their loss; `canaries` default 200) or, with `whitebox`, the
    white-box one-run audit (`training.whitebox_audit`: gradient canaries
    scored on all iterates; `canaries` default 1000), which has the power to
    find a leak. Either is charged to the ledger as its own run, and the
    record keeps aggregate numbers only, nothing per canary.

    The caller has already authorized `train` on the run's dataset (the canary
    audit trains on it) and passes that `auth`: the audit retrains at the run's
    target, which a policy rebound since the run may no longer allow (a lower
    per-run cap, or no budget at all). Returns the audit record written to the
    model card.
    """
    from dataclasses import replace

    from governance.data.splitting import split_for_training
    from training.canary_audit import run_membership_audit, run_one_run_audit

    if whitebox and skip_canary:
        raise InputError("--whitebox retrains with canaries and --skip-canary forbids retraining; choose one")
    if canaries is None:
        canaries = WHITEBOX_CANARIES if whitebox else 200
    if canaries < 10 and not skip_canary:
        raise InputError(f"--canaries: expected at least 10, got {canaries}")
    with ws.session() as s:
        run, bundle = load_run_model(ws, s, run_uid)
    cfg = replace(bundle.config, device=device)
    refusal = None if skip_canary or auth is None else _canary_refusal(auth, cfg.epsilon)
    if refusal is not None:  # before any data is read or budget reserved
        from governance.evidence.recorder import record_event

        record_event(ws, principal=principal, action="train", decision="deny", resource=run.dataset_name,
                     purpose=purpose, reason=refusal[:500], details={"run_uid": run_uid[:64], "for": "audit-model"})
        raise AccessDenied(f"{refusal}; use --skip-canary for membership inference only")
    with ws.session() as s:
        run = _find_run(s, run_uid)
        version = s.get(DatasetVersion, run.version_id)
        ds = catalog.find_dataset(s, run.dataset_name)
        lineage, unit = ds.lineage_id, ds.privacy_unit or "row"
        claimed, delta = float(run.epsilon), float(run.delta)
        data = catalog.read_version(ws, s, ds, version)
        ws.audit.record(s, principal=principal, action="read", decision="info", resource=run.dataset_name,
                        version=version.version, purpose=purpose, details={"rows": int(len(data)), "for": "audit-model"})
    train_df, test_df = split_for_training(data, cfg.unit_column, cfg.test_fraction, cfg.seed)
    del data
    rng = np.random.default_rng(seed)
    n = min(len(train_df), len(test_df), max_members)
    members = train_df.iloc[np.sort(rng.choice(len(train_df), n, replace=False))]
    nonmembers = test_df.iloc[np.sort(rng.choice(len(test_df), n, replace=False))]
    record: dict[str, Any] = {
        "audited_at": utcnow().isoformat(timespec="seconds"), "by": principal, "claimed_epsilon": claimed,
        "delta": delta,
        "membership_inference": run_membership_audit(bundle.model, bundle.encoder, members, nonmembers),
    }
    if not skip_canary:
        audit_uid = f"{run_uid}-audit-{uuid.uuid4().hex[:6]}"
        reserved: list[Any] = []  # the audit run's plan, as reserved

        def reserve(pplan: Any) -> None:
            orders, rdp = pplan.ledger_curve()
            ws.ledger.reserve(lineage_id=lineage, unit=unit, run_uid=audit_uid, epsilon=pplan.epsilon,
                              delta=cfg.delta, orders=orders, rdp=rdp)
            with ws.session() as s:
                ws.audit.record(s, principal=principal, action="budget_reserve", decision="allow",
                                resource=run.dataset_name, version=version.version, purpose=purpose,
                                epsilon=float(pplan.epsilon), details={"run_uid": audit_uid, "for": "audit-model"})
            reserved.append(pplan)

        try:
            if whitebox:
                from training.whitebox_audit import run_whitebox_audit

                one = run_whitebox_audit(train_df, cfg, canaries, seed=seed, before_training=reserve)
            else:
                one = run_one_run_audit(train_df, cfg, canaries, seed=seed, before_training=reserve)
        except BudgetExceeded as exc:
            raise BudgetExceeded(f"{exc}; the canary audit retrains on the data - use --skip-canary for "
                                 "membership inference only") from None
        orders, rdp = reserved[0].ledger_curve()
        spent = float(reserved[0].epsilon) if whitebox else one["claimed_epsilon"]
        from training.model_card import budget_section

        facts = ws.ledger.commit(run_uid=audit_uid, epsilon=spent, orders=orders, rdp=rdp)
        # `claimed_epsilon` is the audit run's own (what the bound is about); it is
        # charged to the ledger and within a hair of the audited model's epsilon.
        if whitebox:
            one = {k: one[k] for k in WHITEBOX_FIELDS}
        else:
            one = {k: v for k, v in one.items() if k not in ("rdp", "rdp_orders")}
        one.update(audit_run_uid=audit_uid, audited_model_epsilon=claimed,
                   budget=budget_section(epsilon_before=facts.epsilon_before, epsilon_after=facts.epsilon_after,
                                         run_epsilon=facts.run_epsilon, run_delta=facts.run_delta,
                                         order=facts.order, delta=facts.delta, composition=facts.composition))
        record["whitebox" if whitebox else "one_run"] = one
    with ws.session() as s:
        row = s.query(Run).filter(Run.run_uid == run_uid).one()
        card = dict(row.model_card_json or {})
        card["audit"] = record
        row.model_card_json = card
        mia = record["membership_inference"]
        ws.audit.record(s, principal=principal, action="audit_model", decision="info", resource=run.dataset_name,
                        version=version.version, purpose=purpose, epsilon=claimed,
                        details={"run_uid": run_uid, "mia_auc": round(float(mia["auc"]), 4),
                                 "epsilon_lower_bound": (round(float(record["one_run"]["epsilon_lower_bound"]), 4)
                                                         if "one_run" in record else None),
                                 "whitebox_epsilon_lower_bound": (
                                     round(float(record["whitebox"]["epsilon_lower_bound"]), 4)
                                     if "whitebox" in record else None)})
        ws.audit.checkpoint(s)
    return record
