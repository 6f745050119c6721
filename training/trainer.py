"""DP training entry points: `plan` (metadata only) and `train_private`.

Why two phases: the privacy plan (sigma, q, steps, epsilon, RDP curve) is
computed from metadata alone - the number of privacy units and the config -
so the budget ledger can reserve (epsilon, delta) before any data is
decrypted. `train_private` then must spend exactly what was planned: same
sample rate, same number of Poisson steps, same sigma; epsilon is reported
by the same PRV accountant that calibrated sigma.

What a run releases: the plan's sample rate is q = batch_size / n where n is
a *declared* bound on the privacy units (`max_units`), never the data's count:
Poisson sampling at rate q is private for any true n (the accountant uses
only q and the steps), so the data's size changes the expected batch, not the
guarantee, and nothing on the card reveals it. The encoder is built from
public declarations (`encoder="declared"`), per-group metrics are suppressed
below `min_group_size`, and the history keeps no training loss.

Model selection: there is no early stopping and no checkpoint picking on
validation data; the final iterate is returned (selection on private data
would itself leak). Hyper-parameters must come from public data or a split
that is accounted separately.

Randomness: `cfg.seed` sets weight initialisation only (the caller's split
and data generator use it too). The Poisson masks, the per-epoch unit
representatives and the Gaussian noise come from two `SecureRandom`s keyed
per run from `os.urandom`; their keys and counters are written only into
`checkpoint_bytes` (which governance stores encrypted), so `resume` continues
the exact streams while nothing published can regenerate them.

Sampling: every accounted entry point (`plan`, `start_run`, `resume`,
`train_private`) refuses anything but Poisson sampling; fixed-size shuffled
batches are reachable only through `train_unsafe_shuffled`, whose result is
labelled NOT Poisson-accounted, for non-private benchmarks.
"""
from __future__ import annotations

import io
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privacy import accounting
from privacy.errors import InputError
from training.features import FeatureEncoder
from training.sampling import BOUNDINGS, check_sampler

ENCODERS = ("declared", "fit_on_data")
ACCOUNTANT = "prv (opacus PRVAccountant; RDP curve kept for ledger composition)"


@dataclass
class TrainConfig:
    """Everything that determines a DP training run (and hence its privacy cost)."""

    target: str
    features: list[str] | None = None
    categorical: list[str] | None = None
    model: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [64])
    epsilon: float = 1.0
    delta: float = 1e-5
    epochs: int = 10
    batch_size: int = 256          # expected logical batch (Poisson: q = batch_size / n_units)
    lr: float = 1e-3
    optimizer: str = "adam"
    max_grad_norm: float = 1.0
    device: str = "auto"           # auto | cpu | cuda
    seed: int = 0                  # weight init only; masks and noise come from a per-run CSPRNG
    unit_column: str | None = None
    sensitive_columns: list[str] = field(default_factory=list)
    test_fraction: float = 0.2
    bounding: str = "one_row_per_unit"  # or "group" (group privacy at the max group size)
    sampler: str = "poisson"       # "shuffle_unsafe" only via train_unsafe_shuffled (NOT accounted)
    clipping: str = "bookkeeping"  # bookkeeping | ghost | per_sample
    amp: bool = False              # bf16 autocast (opt-in)
    physical_batch: int | None = None
    positive_label: str | None = None
    categorical_encoding: str = "embedding"
    weight_decay: float = 0.0
    cuda_graphs: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # What may be released (GUIDE 3): the encoder comes from public declarations
    # (quality suite value sets and ranges) unless "fit_on_data" is chosen, which
    # the model card then states is NOT covered by epsilon.
    encoder: str = "declared"      # declared | fit_on_data
    declared_vocabularies: dict[str, list[Any]] = field(default_factory=dict)
    declared_ranges: dict[str, list[float]] = field(default_factory=dict)  # column -> [min, max]
    # Declared bound on the privacy units q is computed from (None: the caller's
    # count, for benchmarks and tests; a governed run always declares it).
    max_units: int | None = None
    # bounding="group": declared bound on rows per unit; rows beyond it are not trained on.
    max_rows_per_unit: int | None = None
    min_group_size: int = 20       # per-group metrics of smaller groups are shown as "< N"
    public_holdout: bool = False   # held-out split declared public: per-epoch held-out accuracy may be kept

    def validate(self) -> None:
        if self.epochs < 1:
            raise InputError(f"epochs: expected an integer >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise InputError(f"batch_size: expected an integer >= 1, got {self.batch_size}")
        if not (self.max_grad_norm > 0):
            raise InputError(f"max_grad_norm: expected > 0, got {self.max_grad_norm}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device: expected auto, cpu or cuda, got {self.device!r}")
        if self.bounding not in BOUNDINGS:
            raise InputError(f"bounding: expected one of {BOUNDINGS}, got {self.bounding!r}")
        if self.clipping not in ("bookkeeping", "ghost", "per_sample"):
            raise InputError(f"clipping: expected bookkeeping, ghost or per_sample, got {self.clipping!r}")
        check_sampler(self.sampler)
        if self.encoder not in ENCODERS:
            raise InputError(f"encoder: expected one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        for name in ("max_units", "max_rows_per_unit"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InputError(f"{name}: expected a whole number >= 1, got {v!r}")
        if isinstance(self.min_group_size, bool) or not isinstance(self.min_group_size, int) or self.min_group_size < 1:
            raise InputError(f"min_group_size: expected a whole number >= 1, got {self.min_group_size!r}")


@dataclass
class PrivacyPlan:
    sigma: float
    sample_rate: float
    steps: int
    epsilon: float           # per privacy unit (after group conversion when bounding="group")
    delta: float
    orders: list[float]
    rdp: list[float]          # record-level RDP curve of the mechanism
    n_units: int
    expected_batch_size: float
    group_size: int = 1
    record_epsilon: float | None = None
    record_delta: float | None = None
    poisson_accounted: bool = True

    def ledger_curve(self) -> tuple[list[float] | None, list[float] | None]:
        """The RDP curve the budget ledger may compose, or (None, None) for basic composition.

        A group-accounted run's curve is per *row*; RDP group conversion
        (Mironov 2017, Prop. 2: (alpha/2^c, 3^c eps) for groups of 2^c) is so
        loose that a run at epsilon 2 with 5 rows per unit would enter the
        ledger at epsilon ~12. Such runs enter with their exact per-unit
        (epsilon, delta) instead and compose by basic composition, which uses up
        their delta - give group runs a smaller delta if more runs must follow.
        """
        if self.group_size > 1:
            return None, None
        return list(self.orders), list(self.rdp)


@dataclass
class TrainResult:
    model_bytes: bytes
    encoder: FeatureEncoder
    metrics: dict[str, Any]
    per_group: dict[str, Any]
    history: list[dict[str, float]]
    epsilon_spent: float
    sigma: float
    sample_rate: float
    steps: int
    orders: list[float]
    rdp: list[float]
    model_card: dict[str, Any]
    device: str
    delta: float = 0.0
    train_seconds: float = 0.0


def plan(n_train_units: int, cfg: TrainConfig, *, max_group_size: int = 1) -> PrivacyPlan:
    """Privacy plan from metadata only: q = batch/n, steps = epochs/q, sigma by PRV.

    n is `cfg.max_units` when declared (a governed run always declares it) and
    `n_train_units` otherwise. Why a declared n: q and the steps go on the model
    card, and q = batch/n_true would publish n_true. Sampling at a public rate
    is private whatever the true count (it only moves the expected batch), and
    the stepper divides by the public expected batch q*n, not by the data's.

    With `bounding="group"` the mechanism runs over rows and the guarantee is
    converted to units by group privacy at k = `cfg.max_rows_per_unit` (or
    `max_group_size`): the record level target becomes
    (eps/k, delta / (k e^{(k-1) eps/k})), and n counts rows (max_units * k). Only Poisson
    sampling is planned: the accountant analyses nothing else.
    """
    return _plan(n_train_units, cfg, max_group_size=max_group_size, accounted=True)


def require_poisson(cfg: TrainConfig) -> None:
    """Accounted runs sample with Poisson only: the accountant's epsilon assumes it."""
    if cfg.sampler != "poisson":
        raise InputError(f"sampler: {cfg.sampler!r} is not Poisson sampling, so the reported epsilon would not "
                         "hold; accounted runs use 'poisson' (fixed-size batches: "
                         "training.trainer.train_unsafe_shuffled, non-private benchmarks only)")


def _plan(n_train_units: int, cfg: TrainConfig, *, max_group_size: int = 1, accounted: bool = True) -> PrivacyPlan:
    cfg.validate()
    if accounted:
        require_poisson(cfg)
    k = int(cfg.max_rows_per_unit or max_group_size) if cfg.bounding == "group" else 1
    if k < 1:
        raise InputError(f"max_group_size: expected >= 1, got {max_group_size}")
    n = int(n_train_units) if cfg.max_units is None else int(cfg.max_units) * (k if cfg.unit_column else 1)
    if n < 2:
        raise InputError(f"n_train_units: expected at least 2 units, got {n}")
    q = min(1.0, cfg.batch_size / n)
    steps = max(1, int(math.ceil(cfg.epochs / q)))
    rec_eps = cfg.epsilon / k
    rec_delta = cfg.delta / (k * math.exp((k - 1) * rec_eps)) if k > 1 else cfg.delta
    sigma = accounting.calibrate_sigma(rec_eps, rec_delta, q, steps)
    eps_rec = accounting.epsilon_for(sigma, q, steps, rec_delta)
    if k > 1:
        eps_unit = accounting.group_privacy(eps_rec, rec_delta, k)[0]
    else:
        eps_unit = eps_rec
    orders = list(accounting.DEFAULT_ORDERS)
    rdp = accounting.rdp_curve(sigma, q, steps, orders)
    return PrivacyPlan(sigma=sigma, sample_rate=q, steps=steps, epsilon=float(eps_unit), delta=cfg.delta,
                       orders=orders, rdp=rdp, n_units=n, expected_batch_size=q * n, group_size=k,
                       record_epsilon=eps_rec, record_delta=rec_delta,
                       poisson_accounted=cfg.sampler == "poisson")


def build_encoder(df: pd.DataFrame, cfg: TrainConfig) -> FeatureEncoder:
    """The run's encoder: from the config's declarations, or fitted when `encoder="fit_on_data"`."""
    common = dict(positive_label=cfg.positive_label, categorical_encoding=cfg.categorical_encoding,
                  exclude=tuple(c for c in [cfg.unit_column] if c))
    if cfg.encoder == "fit_on_data":
        return FeatureEncoder.fit(df, cfg.target, cfg.features, cfg.categorical, **common)
    return FeatureEncoder.from_declarations(df, cfg.target, cfg.features, cfg.categorical,
                                            vocabularies=cfg.declared_vocabularies,
                                            ranges={c: tuple(r) for c, r in cfg.declared_ranges.items()},
                                            **common)


def bound_rows_per_unit(df: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """Under group bounding with a declared `max_rows_per_unit` k, keep each unit's first k rows.

    Why: group privacy at k covers a unit only if it contributes at most k rows;
    truncating per unit depends on that unit's rows alone, so the guarantee holds
    for every unit whatever the others hold."""
    k = cfg.max_rows_per_unit
    if cfg.bounding != "group" or k is None or cfg.unit_column is None:
        return df
    if cfg.unit_column not in df.columns:
        raise InputError(f"unit_column: column {cfg.unit_column!r} not in data")
    return df[df.groupby(cfg.unit_column, sort=False, dropna=False).cumcount() < k]


def count_units(df: pd.DataFrame, cfg: TrainConfig) -> tuple[int, int]:
    """(units the sampler draws from, largest rows-per-unit) - what `plan` needs."""
    if cfg.unit_column is None:
        return len(df), 1
    if cfg.unit_column not in df.columns:
        raise InputError(f"unit_column: column {cfg.unit_column!r} not in data")
    sizes = df[cfg.unit_column].value_counts(dropna=False)
    if cfg.bounding == "group":
        return len(df), int(sizes.max())
    return int(sizes.size), int(sizes.max())


def resolve_device(name: str) -> "torch.device":  # noqa: F821
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device: 'cuda' requested but no CUDA device is available; use 'auto' or 'cpu'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _model_kwargs(cfg: TrainConfig, enc: FeatureEncoder) -> dict[str, Any]:
    kw = dict(n_numeric=enc.n_numeric, cardinalities=enc.embedding_cardinalities, hidden=list(cfg.hidden),
              n_classes=2)
    kw.update(cfg.model_kwargs)
    return kw


def _inputs(num: np.ndarray, cat: np.ndarray, device: Any) -> list[Any]:
    import torch

    data = [torch.as_tensor(num, device=device)]
    if cat.shape[1]:
        data.append(torch.as_tensor(cat, device=device))
    return data


def _tensors(enc: FeatureEncoder, df: pd.DataFrame, device: Any) -> tuple[list[Any], Any]:
    import torch

    num, cat, y = enc.transform(df)
    if y is None:
        raise InputError(f"target: column {enc.target!r} missing")
    return _inputs(num, cat, device), torch.as_tensor(y, device=device)


RngFactory = Callable[[Any], tuple[Any, Any]]


def _secure_rngs(device: Any) -> tuple[Any, Any]:
    """(sampling, noise) generators, each with its own fresh 256-bit key from the OS; the noise is
    prefetched one step ahead on the CPU (it does not depend on the data)."""
    from training.secure_random import SecureRandom

    return SecureRandom(device), SecureRandom(device, prefetch=True)


class _Run:
    """Holds the live objects of one run so it can be checkpointed and resumed.

    `rngs` builds the (sampling, noise) generators for a device; only the
    clearly named test helpers in `training.insecure_random` pass anything but
    the secure default. `unaccounted=True` (from `train_unsafe_shuffled` only)
    lets a non-Poisson sampler through.
    """

    def __init__(self, train_df: pd.DataFrame, cfg: TrainConfig, pplan: PrivacyPlan,
                 encoder: FeatureEncoder | None = None, *, rngs: RngFactory | None = None,
                 unaccounted: bool = False) -> None:
        import torch

        from training.models import build_model
        from training.sampling import make_sampler, unit_codes
        from training.stepper import DPStepper, make_optimizer

        if not unaccounted:
            require_poisson(cfg)
        self.cfg, self.plan = cfg, pplan
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        train_df = bound_rows_per_unit(train_df, cfg)
        self.encoder = encoder or build_encoder(train_df, cfg)
        self.data, self.y = _tensors(self.encoder, train_df, self.device)
        self.model = build_model(cfg.model, **_model_kwargs(cfg, self.encoder)).to(self.device)
        units = None
        if cfg.unit_column is not None:  # no check against plan.n_units: that is a declared bound, not a count
            units, _, _ = unit_codes(train_df[cfg.unit_column].to_numpy(), self.device)
        sample_rng, self.noise_rng = (rngs or _secure_rngs)(self.device)
        self.sampler = make_sampler(cfg.sampler, len(train_df), pplan.sample_rate, units=units,
                                    bounding=cfg.bounding, device=self.device, rng=sample_rng)
        use_graph = cfg.cuda_graphs and self.device.type == "cuda" and cfg.clipping == "bookkeeping"
        self.optimizer = make_optimizer(cfg.optimizer, [p for p in self.model.parameters()], cfg.lr,
                                        weight_decay=cfg.weight_decay, capturable=use_graph)
        self.stepper = DPStepper(self.model, self.data, self.y, self.sampler, self.optimizer,
                                 noise_multiplier=pplan.sigma, max_grad_norm=cfg.max_grad_norm,
                                 expected_batch_size=pplan.expected_batch_size, clipping=cfg.clipping,
                                 amp=cfg.amp, physical_batch=cfg.physical_batch, cuda_graph=use_graph,
                                 noise_rng=self.noise_rng)
        self.history: list[dict[str, float]] = []
        self.steps_per_epoch = self.sampler.steps_per_epoch

    @property
    def steps_done(self) -> int:
        return self.sampler.steps_done

    def run(self, stop_after: int | None = None, progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        end = self.plan.steps if stop_after is None else min(self.plan.steps, stop_after)
        while self.sampler.steps_done < end:
            self.stepper.step()
            done = self.sampler.steps_done
            if done % self.steps_per_epoch == 0 or done == self.plan.steps:
                # No training loss and no rows seen: both are sums over private rows
                # without noise (one person changes them); the epoch and step are public.
                rec: dict[str, Any] = {"epoch": len(self.history) + 1, "step": done}
                self.history.append(rec)
                if progress:
                    progress(rec)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, generator keys included: for the encrypted checkpoint only."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "sampler": self.sampler.state_dict(), "noise_rng": self.noise_rng.state_dict(),
                "history": list(self.history), "steps_done": self.steps_done,
                "plan": asdict(self.plan), "encoder": self.encoder.state(), "device_type": self.device.type}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        saved = st.get("device_type", self.device.type)
        if saved != self.device.type:
            raise InputError(f"checkpoint: taken on {saved} but resuming on {self.device.type}; the sampler's and "
                             f"the noise's random streams are device-specific - resume with device: {saved}")
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.sampler.load_state_dict(st["sampler"])
        self.noise_rng.load_state_dict(st["noise_rng"])
        self.history = list(st["history"])


def checkpoint_bytes(run: _Run) -> bytes:
    """Model, optimizer, steps done, plan, encoder, and the sampling and noise generators' keys and counters.

    Plain tensors and JSON types only: `resume` loads it with
    `torch.load(weights_only=True)`, so a checkpoint never unpickles objects.
    It holds the secret keys the guarantee rests on: store it encrypted (as
    governance does) and never beside the model or in a report.
    """
    import torch

    buf = io.BytesIO()
    torch.save(run.state_dict(), buf)
    return buf.getvalue()


def save_checkpoint(run: _Run, path: str | Path) -> None:
    """`checkpoint_bytes` written to a file."""
    Path(path).write_bytes(checkpoint_bytes(run))


def start_run(train_df: pd.DataFrame, cfg: TrainConfig, pplan: PrivacyPlan) -> _Run:
    """A run object that can `run(stop_after=...)`, be checkpointed and resumed (Poisson sampling only)."""
    return _Run(train_df, cfg, pplan)


def check_checkpoint_plan(st: dict[str, Any], pplan: PrivacyPlan, source: str = "checkpoint") -> None:
    """A resumed run must spend exactly the plan its reservation was made for."""
    saved = st["plan"]
    if abs(saved["sigma"] - pplan.sigma) > 1e-12 or saved["steps"] != pplan.steps or \
            abs(saved["sample_rate"] - pplan.sample_rate) > 1e-15:
        raise InputError(f"{source}: privacy plan differs from the current plan; resume with the same plan")


def resume(checkpoint: str | Path | bytes, train_df: pd.DataFrame, cfg: TrainConfig, pplan: PrivacyPlan) -> _Run:
    """Rebuild a run from a checkpoint (file path or bytes); it continues with the same Poisson draws and noise."""
    import torch

    require_poisson(cfg)
    source = "checkpoint" if isinstance(checkpoint, bytes) else f"checkpoint {checkpoint}"
    raw = checkpoint if isinstance(checkpoint, bytes) else Path(checkpoint).read_bytes()
    try:
        st = torch.load(io.BytesIO(raw), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the weights-only unpickler raises many types on foreign bytes
        raise InputError(f"{source}: not a privgov training checkpoint ({type(exc).__name__})") from None
    check_checkpoint_plan(st, pplan, source)
    if "dist" in st:  # its sampler states index per-rank shards (training.distributed)
        raise InputError(f"{source}: taken by a {int(st['dist']['world'])}-process run; resume with "
                         f"--nproc {int(st['dist']['world'])}")
    run = _Run(train_df, cfg, pplan, encoder=FeatureEncoder.from_state(st["encoder"]))
    run.load_state_dict(st)
    return run


def predict_proba(model: Any, enc: FeatureEncoder, df: pd.DataFrame, device: Any = "cpu",
                  batch: int = 65536) -> np.ndarray:
    """P(target == positive label) per row, in batches; labels are not needed."""
    import torch

    num, cat, _ = enc.transform(df)
    data = _inputs(num, cat, device)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(df), batch):
            logits = model(*[t[s:s + batch] for t in data]).float()
            out.append(torch.softmax(logits, dim=1)[:, 1].cpu())
    model.train(was_training)
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def finish_run(run: _Run, test_df: pd.DataFrame | None, cfg: TrainConfig, *, t0: float | None = None,
               dataset_fingerprint: str | None = None) -> TrainResult:
    """Evaluate the final iterate, report epsilon from PRV, build the model card."""
    import torch

    from training.evaluation import evaluate, per_group_report
    from training.model_card import build_model_card

    if run.steps_done != run.plan.steps:
        raise InputError(f"run: {run.steps_done} of {run.plan.steps} steps done; resume before finishing")
    bk = getattr(run.stepper.clipper, "detach", None)
    if bk:
        bk()
    p = run.plan
    eps_rec = accounting.epsilon_for(p.sigma, p.sample_rate, p.steps, p.record_delta or p.delta)
    eps = eps_rec
    if p.group_size > 1:
        eps = accounting.group_privacy(eps_rec, p.record_delta, p.group_size)[0]
    metrics: dict[str, Any] = {}
    per_group: dict[str, Any] = {}
    if test_df is not None and len(test_df):
        prob = predict_proba(run.model, run.encoder, test_df, run.device)
        y = run.encoder.transform(test_df)[2]
        metrics = evaluate(y, prob)
        if cfg.sensitive_columns:
            per_group = per_group_report(y, prob, test_df, cfg.sensitive_columns, min_group=cfg.min_group_size,
                                         declared=_declared_groups(cfg, run.encoder))
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in run.model.state_dict().items()}, buf)
    result = TrainResult(
        model_bytes=buf.getvalue(), encoder=run.encoder, metrics=metrics, per_group=per_group,
        history=run.history, epsilon_spent=float(eps), sigma=p.sigma, sample_rate=p.sample_rate, steps=p.steps,
        orders=p.orders, rdp=p.rdp, model_card={}, device=str(run.device), delta=p.delta,
        train_seconds=(time.time() - t0) if t0 else 0.0)
    # No counts of empty batches or graph-replayed steps: both follow the true
    # batch sizes, i.e. the data's size, which the card must not reveal.
    result.model_card = build_model_card(cfg, p, result, dataset_fingerprint=dataset_fingerprint,
                                         extra={"randomness": run.noise_rng.description})
    return result


def _declared_groups(cfg: TrainConfig, enc: FeatureEncoder) -> dict[str, list[str]] | None:
    """Declared values of each sensitive column: group labels outside them are pooled, never named."""
    if enc.source != "declared":
        return None
    from training.features import category_key

    return {c: [category_key(v) for v in cfg.declared_vocabularies.get(c, [])] for c in cfg.sensitive_columns}


def train_private(train_df: pd.DataFrame, test_df: pd.DataFrame | None, cfg: TrainConfig, plan: PrivacyPlan,
                  progress: Callable[[dict[str, Any]], None] | None = None, *,
                  dataset_fingerprint: str | None = None) -> TrainResult:
    """Train with DP-SGD exactly as planned; returns weights, metrics, epsilon and the model card."""
    t0 = time.time()
    run = _Run(train_df, cfg, plan)
    run.run(progress=progress)
    return finish_run(run, test_df, cfg, t0=t0, dataset_fingerprint=dataset_fingerprint)


def train_unsafe_shuffled(train_df: pd.DataFrame, test_df: pd.DataFrame | None, cfg: TrainConfig) -> TrainResult:
    """Clipped, noised training on fixed-size shuffled batches: NOT Poisson, so NOT covered by the accountant.

    For non-private benchmarks and comparisons only (cfg.sampler must say
    'shuffle_unsafe'); the card carries `poisson_accounted: false` and a
    warning. Never call this for a governed run: it reserves nothing.
    """
    if cfg.sampler != "shuffle_unsafe":
        raise InputError(f"sampler: train_unsafe_shuffled needs sampler='shuffle_unsafe', got {cfg.sampler!r}")
    n_units, max_group = count_units(train_df, cfg)
    pplan = _plan(n_units, cfg, max_group_size=max_group, accounted=False)
    t0 = time.time()
    run = _Run(train_df, cfg, pplan, unaccounted=True)
    run.run()
    return finish_run(run, test_df, cfg, t0=t0)


def train_nonprivate(train_df: pd.DataFrame, test_df: pd.DataFrame | None, cfg: TrainConfig,
                     progress: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Ordinary training (no clipping, no noise) for comparisons only; epsilon is inf."""
    import torch
    from torch.nn import functional as F

    from training.evaluation import evaluate, per_group_report
    from training.models import build_model
    from training.stepper import make_optimizer

    t0 = time.time()
    cfg.validate()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    enc = build_encoder(train_df, cfg)
    data, y = _tensors(enc, train_df, device)
    model = build_model(cfg.model, **_model_kwargs(cfg, enc)).to(device)
    opt = make_optimizer(cfg.optimizer, list(model.parameters()), cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    n = len(train_df)
    history = []
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, device=device, generator=gen)
        tot = torch.zeros((), device=device)
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            loss = F.cross_entropy(model(*[t[idx] for t in data]).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.detach() * idx.numel()
        rec = {"epoch": epoch + 1, "train_loss": float(tot.item()) / n}
        history.append(rec)
        if progress:
            progress(rec)
    metrics, per_group = {}, {}
    if test_df is not None and len(test_df):
        prob = predict_proba(model, enc, test_df, device)
        yt = enc.transform(test_df)[2]
        metrics = evaluate(yt, prob)
        if cfg.sensitive_columns:
            per_group = per_group_report(yt, prob, test_df, cfg.sensitive_columns, min_group=cfg.min_group_size,
                                         declared=_declared_groups(cfg, enc))
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    card = {"privacy": {"differentially_private": False, "epsilon": math.inf}, "metrics": metrics}
    return TrainResult(model_bytes=buf.getvalue(), encoder=enc, metrics=metrics, per_group=per_group,
                       history=history, epsilon_spent=math.inf, sigma=0.0, sample_rate=0.0, steps=0,
                       orders=[], rdp=[], model_card=card, device=str(device), delta=0.0,
                       train_seconds=time.time() - t0)


def load_model(result: TrainResult, cfg: TrainConfig) -> Any:
    """Rebuild the trained torch model on CPU from `model_bytes` and the encoder."""
    import torch

    from training.models import build_model

    model = build_model(cfg.model, **_model_kwargs(cfg, result.encoder))
    model.load_state_dict(torch.load(io.BytesIO(result.model_bytes), weights_only=True))
    return model


def encoder_bytes(enc: FeatureEncoder) -> bytes:
    """Pickled encoder, saved next to the model weights."""
    return pickle.dumps(enc)
