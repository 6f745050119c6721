"""The training stages of a governed run: plan and reserve, train with checkpoints, store the model.

Order is the guarantee: the `train` decision is taken before anything is
stored, the budget is reserved (one transaction, against the cap the bound
policy set) before the version is written or decrypted, the stored version is
decrypted only after both, and the ledger entry is committed with what the run
actually spent.

What leaves the run (GUIDE 3): the trainer gets the pipeline's public
declarations - value sets and ranges from the quality suite, carried through
the de-identification steps, and a declared bound on the privacy units - and
builds its encoder and its sample rate from them alone. The card carries a
keyed fingerprint of the version, not a hash of its plaintext, and says what
epsilon covers when count-based steps shaped the stored version.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import pandas as pd

from governance.data.splitting import SPLIT_COLUMN, split_for_training, train_split_stats
from governance.run.context import RunContext
from governance.run.records import Reservation, Stored, Trained
from privacy.errors import AccessDenied, BudgetExceeded, InputError


# Set from the suite, never from the pipeline's options: one home for public declarations.
_SUITE_ONLY_OPTIONS = ("declared_vocabularies", "declared_ranges")


def train_config(ctx: RunContext, columns: list[str]) -> Any:
    """Map the spec's training block to the trainer's config; features default to every
    column except the target, row id, split marker and privacy unit.

    The declarations come from the quality suite after the de-identification
    steps; the units bound q is computed from is the training option
    `max_units`, else the suite's declared row bound (rows bound units: every
    unit has at least one row)."""
    from governance.data import declarations
    from training.trainer import TrainConfig

    spec, t = ctx.spec, ctx.spec.training
    excluded = {t.target, spec.row_id, SPLIT_COLUMN, ctx.unit_column}
    features = t.features or [c for c in columns if c not in excluded]
    missing = [c for c in [t.target, *features] if c not in columns]
    if missing:
        raise InputError(f"pipeline `{spec.name}`: training column(s) {missing} are not in the stored version")
    options = dict(t.options)
    given = [k for k in _SUITE_ONLY_OPTIONS if k in options]
    if given:
        raise InputError(f"pipeline `{spec.name}`: training option `{given[0]}` cannot be set in the pipeline; "
                         "declare value sets and ranges in the quality suite")
    suite = spec.resolve(spec.quality.suite) if spec.quality else None
    decl = declarations.for_pipeline(suite, spec.deid.steps).for_columns(columns)
    if options.get("max_units") is None:
        if decl.max_rows is None:
            raise InputError(f"pipeline `{spec.name}`: no declared bound on the number of privacy units; add "
                             "`expect_table_row_count_to_be_between` with max_value to the quality suite or set "
                             "the training option `max_units` (the sample rate is batch_size / that bound)")
        options["max_units"] = decl.max_rows
    declared = policy_unit(ctx)  # the per-unit bound is the policy's, never the pipeline's
    options["max_rows_per_unit"] = declared.max_rows_per_unit if ctx.unit_column else None
    extra = {k: v for k, v in {"lr": t.lr, "optimizer": t.optimizer}.items() if v is not None}
    cfg = TrainConfig(
        target=t.target, positive_label=None if t.positive is None else str(t.positive), features=features,
        categorical=t.categorical, model=t.model, hidden=t.hidden, epsilon=t.epsilon, delta=t.delta,
        epochs=t.epochs, batch_size=t.batch_size, max_grad_norm=t.max_grad_norm, device=t.device, seed=t.seed,
        unit_column=ctx.unit_column, sensitive_columns=t.sensitive_columns, test_fraction=t.test_fraction,
        bounding=t.bounding, declared_vocabularies={c: list(v) for c, v in decl.vocabularies.items()},
        declared_ranges={c: [float(lo), float(hi)] for c, (lo, hi) in decl.ranges.items()}, **extra, **options,
    )
    cfg.validate()
    if cfg.encoder == "declared":  # refuse before anything is stored, reserved or decrypted
        from training.features import check_declared

        try:
            check_declared(features, t.categorical, cfg.declared_vocabularies, cfg.declared_ranges)
        except InputError as exc:
            raise InputError(f"pipeline `{spec.name}`: {exc}") from None
    return cfg


def split(ctx: RunContext, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = ctx.spec.training
    return split_for_training(data, ctx.unit_column, t.test_fraction, t.seed)


def split_meta(ctx: RunContext, df: pd.DataFrame) -> dict[str, Any]:
    """Train-split sizes, recorded with the version so the plan is computable from metadata alone."""
    train, _ = split(ctx, df)
    return {"train_split": train_split_stats(train, ctx.unit_column)}


def check_per_run_cap(ctx: RunContext, obligations: Any) -> float | None:
    cap = obligations.epsilon_cap
    if cap is not None and ctx.spec.training.epsilon > cap:
        raise AccessDenied(f"target epsilon {ctx.spec.training.epsilon} exceeds the per-run cap {cap} granted to "
                           f"`{ctx.identity.name}`")
    return cap


def policy_unit(ctx: RunContext) -> Any:
    """The bound policy's `privacy:` section, which every training run needs; refusals are audited.

    Why from the policy and not the pipeline: the unit and the bound on one
    unit's rows decide what epsilon means, so they are the admin's to declare
    (`privgov policy bind`). A pipeline may restate the bound (training option
    `max_rows_per_unit`) but not change it; the unit itself is checked at
    admission. A dataset bound before units lived in the policy text has no
    section to read: it is refused with the rebind command, not run per row."""
    name, spec = ctx.dataset.name, ctx.spec
    declared = ctx.policy.privacy
    rebind = f"an admin adds it to the policy and rebinds: `privgov policy bind {name} POLICY.yaml`"
    if declared is None:
        ctx.record("train", decision="deny", purpose=spec.purpose, reason="the bound policy declares no privacy unit")
        raise AccessDenied(f"dataset `{name}`: the policy bound to it declares no privacy unit (`privacy: {{unit: "
                           f"COLUMN, max_rows_per_unit: N}}` or `{{unit: row, statement: ...}}`), so training is "
                           f"refused; {rebind}")
    if declared.column != ctx.dataset.privacy_unit:
        reason = (f"`{name}` is bound with privacy unit `{ctx.dataset.unit}` but its policy declares "
                  f"`{declared.unit}`")
        ctx.record("train", decision="deny", purpose=spec.purpose, reason=reason[:500])
        raise AccessDenied(f"dataset {reason}; training is refused; an admin rebinds: "
                           f"`privgov policy bind {name} POLICY.yaml`")
    given = spec.training.options.get("max_rows_per_unit") if spec.training else None
    if given is not None and given != declared.rows_bound:
        reason = (f"pipeline sets max_rows_per_unit {given!r} but the policy bound to `{name}` declares "
                  f"{declared.rows_bound} rows per `{declared.unit}`; the bound is set by the admin who binds the policy")
        ctx.record("run", decision="deny", purpose=spec.purpose, reason=reason[:500])
        raise AccessDenied(f"pipeline `{spec.name}`: {reason[len('pipeline '):]}")
    return declared


def require_cap(ctx: RunContext) -> None:
    """Training needs a unit and a cap from the bound policy; refuse (audited) before any work."""
    policy_unit(ctx)
    try:
        ctx.ws.ledger.status(ctx.dataset.lineage_id, ctx.unit)
    except InputError:
        ctx.record("budget_reserve", decision="deny", purpose=ctx.spec.purpose, reason="no budget cap bound")
        raise AccessDenied(f"dataset `{ctx.dataset.name}` has no privacy budget cap (the bound policy declares "
                           "none); training is refused") from None


def plan_size(meta: dict[str, Any], cfg: Any, dataset: str) -> tuple[int, int]:
    """(declared units, declared max rows per unit) the plan is made for.

    Declared, not counted: the train split's sizes in `meta` are private (they
    stay in the encrypted catalog), and a plan made from them would publish
    them through q and the steps on the card."""
    if cfg.max_units is None:
        raise InputError(f"dataset `{dataset}`: the training config declares no units bound (max_units)")
    k = cfg.max_rows_per_unit if cfg.bounding == "group" and cfg.unit_column else 1
    return int(cfg.max_units), int(k or 1)


def reserve(ctx: RunContext, columns: list[str], meta: dict[str, Any], per_run_cap: float | None) -> Reservation:
    """Plan the run from metadata and reserve its (ε, δ) on the dataset's ledger."""
    from training.trainer import plan

    t = ctx.spec.training
    cfg = train_config(ctx, columns)
    n_plan, max_group = plan_size(meta, cfg, ctx.dataset.name)
    pplan = plan(n_plan, cfg, max_group_size=max_group)
    orders, rdp = pplan.ledger_curve()
    try:
        ctx.ws.ledger.reserve(lineage_id=ctx.dataset.lineage_id, unit=ctx.unit, run_uid=ctx.run_uid,
                              epsilon=pplan.epsilon, delta=t.delta, orders=orders, rdp=rdp)
    except BudgetExceeded as exc:
        ctx.record("budget_reserve", decision="deny", epsilon=pplan.epsilon, purpose=ctx.spec.purpose,
                   reason=str(exc)[:500])
        raise BudgetExceeded(f"dataset `{ctx.dataset.name}`: {exc}; see `privgov budget show {ctx.dataset.name}`") from None
    ctx.record("budget_reserve", decision="allow", epsilon=pplan.epsilon, purpose=ctx.spec.purpose,
               details={"sigma": float(pplan.sigma), "steps": int(pplan.steps), "group_size": int(pplan.group_size)})
    return Reservation(config=cfg, plan=pplan, epsilon=float(pplan.epsilon), delta=float(t.delta),
                       epsilon_cap=per_run_cap)


def check_reservation(ctx: RunContext, epsilon: float) -> None:
    """A resumed run must still hold its reservation, for the same target."""
    status = ctx.ws.ledger.status(ctx.dataset.lineage_id, ctx.unit)
    entry = next((r for r in status.runs if r.run_uid == ctx.run_uid), None)
    if entry is None or entry.state != "reserved":
        state = "no reservation" if entry is None else f"its reservation is {entry.state}"
        raise InputError(f"run {ctx.run_uid}: {state}; only a run that reserved budget and did not commit can be resumed")
    if abs(float(entry.target_epsilon or entry.epsilon) - epsilon) > 1e-9:
        raise InputError(f"run {ctx.run_uid}: the pipeline's training settings give epsilon {epsilon:.6g} but the run "
                         f"reserved {entry.target_epsilon:.6g}; resume with the pipeline file the run started with")
    ctx.record("budget_resume", decision="allow", epsilon=float(epsilon), purpose=ctx.spec.purpose,
               details={"run_uid": ctx.run_uid})


def train(ctx: RunContext, stored: Stored, reservation: Reservation, resume: bool = False, *,
          nproc: int = 1) -> Trained:
    """Decrypt the stored version, train (checkpointing), commit the ledger, store the model.

    With `nproc` > 1 the shards go to spawned workers in memory
    (`training.distributed`); this process is rank 0 and alone commits the
    ledger, once, after every rank agreed on the plan and finished."""
    from governance.data import declarations
    from governance.run import checkpoints
    from governance.storage import catalog
    from governance.storage.store import Dataset

    with ctx.ws.session() as s:
        ds = s.get(Dataset, ctx.dataset.id)
        version = catalog.get_version(s, ds, stored.version)
        covers = declarations.epsilon_covers(list(version.steps_json or []))
        data = catalog.read_version(ctx.ws, s, ds, version)
    ctx.record("read", decision="allow", purpose=ctx.spec.purpose, version=stored.version,
               details={"rows": int(len(data)), "for": "train"})
    train_df, test_df = split(ctx, data)
    del data
    result = _train_with_checkpoints(ctx, stored, train_df, test_df, reservation, resume, nproc)
    orders, rdp = reservation.plan.ledger_curve()
    facts = ctx.ws.ledger.commit(run_uid=ctx.run_uid, epsilon=result.epsilon_spent, orders=orders, rdp=rdp)
    _store_model(ctx, stored, result, reservation, covers, facts)
    checkpoints.drop(ctx.ws, ctx.run_uid)
    return Trained(epsilon_spent=float(result.epsilon_spent), metrics=dict(result.metrics), steps=int(result.steps))


def _train_with_checkpoints(ctx: RunContext, stored: Stored, train_df: pd.DataFrame, test_df: pd.DataFrame,
                            reservation: Reservation, resume: bool, nproc: int = 1) -> Any:
    from governance.run import checkpoints
    from training.trainer import checkpoint_bytes, finish_run, resume as resume_run, start_run

    cfg, pplan = reservation.config, reservation.plan
    t0 = time.time()
    if not resume:
        run = start_run(train_df, cfg, pplan) if nproc == 1 else _distributed(train_df, cfg, pplan, nproc)
    else:
        with ctx.ws.session() as s:
            ck = checkpoints.latest(s, ctx.run_uid)
            if ck is None:
                raise InputError(f"run {ctx.run_uid}: no checkpoint was stored (checkpoint_every_epochs: 0, or it "
                                 "died before its first epoch); its reservation stays charged")
            raw = checkpoints.load(ctx.ws, s, ck)
        run = resume_run(raw, train_df, cfg, pplan) if nproc == 1 else _distributed(train_df, cfg, pplan, nproc, raw)
        ctx.record("resume", purpose=ctx.spec.purpose, version=stored.version,
                   details={"run_uid": ctx.run_uid, "step": int(run.steps_done), "steps": int(pplan.steps)})
    every = ctx.spec.training.checkpoint_every_epochs * run.steps_per_epoch
    on_epoch = _held_out_accuracy(run, test_df) if cfg.public_holdout else None
    while run.steps_done < pplan.steps:
        stop = (run.steps_done // every + 1) * every if every else None
        run.run(stop_after=stop, progress=on_epoch)
        if every and run.steps_done < pplan.steps:
            checkpoints.save(ctx.ws, ctx.run_uid, checkpoint_bytes(run), run.steps_done, pplan.steps)
    return finish_run(run, test_df, cfg, t0=t0, dataset_fingerprint=fingerprint(ctx, stored))


def _distributed(train_df: pd.DataFrame, cfg: Any, pplan: Any, nproc: int, raw: bytes | None = None) -> Any:
    """Rank 0 of an `nproc`-process run in this process; the checkpoint, when resuming, must be one of its kind."""
    from training.distributed import resume_distributed, start_distributed

    if raw is None:
        return start_distributed(train_df, cfg, pplan, nproc)
    return resume_distributed(raw, train_df, cfg, pplan, nproc)


def fingerprint(ctx: RunContext, stored: Stored) -> str:
    """HMAC-SHA256 of the version's content hash under this workspace's fingerprint key.

    Why keyed: a plain sha256 of the plaintext on a card lets anyone holding a
    candidate copy of the data confirm it is what the model was trained on. The
    keyed value still tells two versions apart within a workspace, and the same
    data gets unrelated fingerprints in two workspaces."""
    import hashlib
    import hmac

    key = ctx.ws.keyring.hmac_key("dataset-fingerprint")
    return hmac.new(key, stored.content_hash.encode("ascii"), hashlib.sha256).hexdigest()


def _held_out_accuracy(run: Any, test_df: pd.DataFrame) -> Callable[[dict[str, Any]], None] | None:
    """Per-epoch accuracy on the held-out split, for the report's training curves.

    Only when the pipeline declares the held-out split public (training option
    `public_holdout: true`): the held-out rows are not training rows, so the
    curve does not touch the training guarantee, but they are private rows and
    each epoch's figure is computed from them without noise. The final held-out
    metrics are kept either way (one figure, per-group ones suppressed below the
    minimum group size)."""
    from training.trainer import predict_proba

    if test_df is None or not len(test_df):
        return None
    y = run.encoder.transform(test_df)[2]

    def on_epoch(rec: dict[str, Any]) -> None:
        prob = predict_proba(run.model, run.encoder, test_df, run.device)
        rec["test_accuracy"] = float(((prob >= 0.5) == (y == 1)).mean())

    return on_epoch


def _store_model(ctx: RunContext, stored: Stored, result: Any, reservation: Reservation, covers: str,
                 facts: Any) -> None:
    """The model bundle (weights + encoder + config) is stored encrypted, bound to the run.

    The card's budget lines are the ledger facts `commit` read in its own
    transaction: the dataset's ε before and after this run, the run's own ε
    and the filter's order."""
    from governance.storage import aad, catalog
    from governance.storage.store import Run
    from training.model_bundle import bundle_bytes
    from training.model_card import budget_section

    card = dict(result.model_card)
    card.update({"dataset": ctx.dataset.name, "dataset_version": stored.version, "privacy_unit": ctx.unit,
                 "run_uid": ctx.run_uid})
    t = ctx.spec.training
    card["privacy"] = {**card.get("privacy", {}), "epsilon_covers": covers,
                       "units_source": ("training option max_units" if t.options.get("max_units") is not None else
                                        "quality suite: expect_table_row_count_to_be_between max_value"),
                       "policy_max_rows_per_unit": reservation.config.max_rows_per_unit,
                       "unit_declared_by": "the policy bound to the dataset (privacy: section)"}
    card["budget"] = budget_section(epsilon_before=facts.epsilon_before, epsilon_after=facts.epsilon_after,
                                    run_epsilon=facts.run_epsilon, run_delta=facts.run_delta, order=facts.order,
                                    delta=facts.delta, composition=facts.composition)
    with ctx.ws.session() as s:
        ref = ctx.ws.objects.put_bytes(s, bundle_bytes(result, reservation.config),
                                       associated=aad.model(ctx.run_uid))
        run = s.query(Run).filter(Run.run_uid == ctx.run_uid).one()
        run.epsilon = result.epsilon_spent
        run.delta = reservation.delta
        run.metrics_json = {"metrics": result.metrics, "per_group": result.per_group, "history": result.history}
        run.model_card_json = card
        run.model_blob_hash = ref.blob_hash
        run.model_data_key_id = ref.data_key_id
        s.flush()
        catalog.add_edge(s, "version", stored.version_id, "run", run.id, "trained")
        ctx.ws.audit.record(s, principal=ctx.identity.name, action="train", decision="info",
                            resource=ctx.dataset.name, version=stored.version, purpose=ctx.spec.purpose,
                            epsilon=float(result.epsilon_spent),
                            details={"accuracy": float(result.metrics.get("accuracy", float("nan"))),
                                     "steps": int(result.steps),
                                     "ledger_epsilon_before": float(facts.epsilon_before),
                                     "ledger_epsilon_after": float(facts.epsilon_after),
                                     "order": float(facts.order)})
