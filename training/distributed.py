"""Distributed DP-SGD over torch.distributed (gloo on CPU, NCCL on GPUs), same guarantee as one process.

Why the guarantee is unchanged (docs/distributed.md has the long form). The
single-process step releases  (sum_{i in B} clip_C(g_i) + N(0, sigma^2 C^2 I)) / (q n)
with B a Poisson(q) sample of the units. Here:

* Sampling: the units are partitioned across the W ranks (`shard_of`: by
  privacy unit when there is one, so every row of a unit is on one rank; by
  row otherwise), and each rank draws one Bernoulli(q) coin per unit of its
  shard from its own `SecureRandom` keyed from `os.urandom` in that process
  (never from the seed). Every unit is in exactly one shard, so the union of
  the ranks' batches is one Poisson(q) sample of all the units - the event
  the accountant analyses. Each rank keeps one representative row per unit
  per epoch exactly as `PoissonSampler` does alone.
* Clipping: each rank clips per example (the unchanged clippers) and sums.
  The sums are added by one all-reduce, so the clipped sum is the
  single-process one; sensitivity is still C.
* Noise: only rank 0 adds N(0, sigma^2 C^2 I), to its own clipped sum, before
  the all-reduce; the others add nothing. Why not sigma^2 C^2 / W on every
  rank: then the released sum is private only if *every* rank really adds its
  share (one worker that skips it, or whose generator is broken, leaves
  noise of variance (W-1)/W sigma^2 C^2 and the accountant's epsilon is
  wrong). With rank-0 noise the guarantee rests on rank 0 alone - the
  governance process that holds the plan, the ledger and the audit log - and a
  worker cannot cancel noise it never sees before the sum. (A dishonest worker
  can still leak its own shard directly; no noise split prevents that, and
  workers are processes this run starts itself.)
* Scale: the sum is divided by the plan's public expected batch q n, as
  alone; every rank applies the same averaged noisy gradient to the same
  model, so the replicas stay identical.
* Plan: before the first step every rank publishes (sigma, q, steps, C,
  expected batch, W, model hash) and all must agree (`agree`), or every rank
  refuses. The caller charges the ledger from rank 0 only (governance
  reserves before decrypting, as every run does, and commits once at the end).

Entry points: `start_distributed` / `resume_distributed` run rank 0 in the
calling process (the governed one) and spawn W-1 workers with
torch.multiprocessing; shards go to them over a pipe, in memory, never to
disk. `python -m training.distributed` (under `torchrun`) trains a CSV file
with every rank reading its own shard.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import InputError, PrivgovError

HOST = "127.0.0.1"
TIMEOUT_S = 120           # a collective waiting on a dead peer gives up after this
_RUN, _STOP = 1, 0
_PLAN_KEYS = ("sigma", "sample_rate", "steps", "expected_batch_size", "max_grad_norm", "world", "model_sha256",
              "clipping", "optimizer", "lr")


class DistributedFailure(PrivgovError):
    """A rank died or the ranks disagree; the run stops, its reservation stays (exit 1)."""

    exit_code = 1


# ------------------------------------------------------------------ sharding
def shard_of(df: pd.DataFrame, unit_column: str | None, world: int) -> np.ndarray:
    """The rank every row goes to: rows of one privacy unit always share a rank.

    Why by unit: a unit on two ranks could be drawn by both in one step, so its
    contribution would no longer be bounded by C (and its inclusion would not
    be one Bernoulli(q) coin). The assignment depends on row order only, so a
    resumed run gets the same shards from the same split."""
    if world < 1:
        raise InputError(f"nproc: expected a whole number >= 1, got {world}")
    if unit_column is None:
        return np.arange(len(df)) % world
    if unit_column not in df.columns:
        raise InputError(f"unit_column: column {unit_column!r} not in data")
    codes, _ = pd.factorize(df[unit_column], use_na_sentinel=False)
    return np.asarray(codes) % world


def shards(df: pd.DataFrame, unit_column: str | None, world: int) -> list[pd.DataFrame]:
    """`df` split into `world` disjoint frames that together hold every row once."""
    rank = shard_of(df, unit_column, world)
    return [df[rank == r] for r in range(world)]


# ------------------------------------------------------------------ one rank
def model_sha256(model: Any) -> str:
    """Hash of the parameters and buffers: replicas must start (and resume) from the same weights."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _plan_facts(run: Any, world: int) -> dict[str, Any]:
    p, cfg = run.plan, run.cfg
    return {"sigma": float(p.sigma), "sample_rate": float(p.sample_rate), "steps": int(p.steps),
            "expected_batch_size": float(p.expected_batch_size), "max_grad_norm": float(cfg.max_grad_norm),
            "world": int(world), "model_sha256": model_sha256(run.model), "clipping": cfg.clipping,
            "optimizer": cfg.optimizer, "lr": float(cfg.lr)}


def agree(run: Any, rank: int, world: int) -> dict[str, Any]:
    """All-gather every rank's plan; every rank refuses unless all are identical.

    This is the "ready" barrier: no rank computes a gradient before it
    returns, and rank 0's caller charges nothing unless it returns."""
    import torch.distributed as dist

    mine = _plan_facts(run, world)
    seen: list[Any] = [None] * world
    dist.all_gather_object(seen, mine)
    for r, facts in enumerate(seen):
        diff = [k for k in _PLAN_KEYS if facts.get(k) != mine.get(k)]
        if diff:
            raise DistributedFailure(f"rank {r}: its plan differs from rank {rank}'s in {', '.join(diff)}; "
                                     "every rank must train the same plan")
    return mine


def attach(run: Any, rank: int) -> None:
    """Make `run`'s clipper all-reduce the clipped sums, rank 0 alone adding the noise.

    Replaces `ClippedSumBase.finalize` on this instance: sums of clipped
    per-example gradients (zeros for an empty batch) are flattened, rank 0
    adds one N(0, sigma^2 C^2) draw, one SUM all-reduce, then the division by
    the plan's expected batch as in one process."""
    import torch
    import torch.distributed as dist

    clipper = run.stepper.clipper
    run.stepper.use_graph = False  # a captured graph cannot hold the all-reduce

    def finalize() -> None:
        params = clipper.params
        dev = params[0].device
        parts = []
        for p in params:
            s = clipper._sum.get(p)
            parts.append(torch.zeros(p.numel(), device=dev) if s is None else s.reshape(-1).float())
        flat = torch.cat(parts)
        if rank == 0:
            noise = clipper.draw_noise()
            if noise is not None:
                flat.add_(noise.to(dev))
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.mul_(1.0 / clipper.expected_batch_size)
        off = 0
        for p in params:
            n = p.numel()
            p.grad = flat[off:off + n].view(p.shape).to(p.dtype).clone()
            off += n
        clipper._sum = {}

    clipper.finalize = finalize


def build_rank(shard: pd.DataFrame, cfg: Any, pplan: Any, encoder_state: dict[str, Any], rank: int,
               world: int, loss_fn: Callable[..., Any] | None = None) -> Any:
    """One rank's `_Run` over its shard: own fresh sampling key, the shared encoder, the hooked clipper."""
    from training.features import FeatureEncoder
    from training.trainer import _Run

    run = _Run(shard, cfg, pplan, encoder=FeatureEncoder.from_state(encoder_state))
    if loss_fn is not None:
        run.stepper.loss_fn = loss_fn
    attach(run, rank)
    return run


def _load_replica(run: Any, st: dict[str, Any], sampler_state: dict[str, Any]) -> None:
    """Model, optimizer and this rank's sampler from a checkpoint (no noise key: rank 0 keeps it)."""
    run.model.load_state_dict(st["model"])
    run.optimizer.load_state_dict(st["optimizer"])
    run.sampler.load_state_dict(sampler_state)
    run.history = list(st["history"])


def serve(run: Any, probe: list[Any] | None = None) -> None:
    """A worker's loop: run to the step rank 0 broadcasts, then hand back its sampler state."""
    import torch
    import torch.distributed as dist

    while True:
        cmd = torch.zeros(2, dtype=torch.long)
        dist.broadcast(cmd, 0)
        if int(cmd[0]) == _STOP:
            return
        _run_until(run, int(cmd[1]), probe)
        dist.gather_object(run.sampler.state_dict(), None, dst=0)


def _run_until(run: Any, end: int, probe: list[Any] | None, progress: Callable[..., None] | None = None) -> None:
    if probe is None:
        run.run(stop_after=end, progress=progress)
        return
    while run.steps_done < end:  # tests: keep every step's noised gradient
        run.run(stop_after=run.steps_done + 1, progress=progress)
        probe.append(torch_flat_grad(run))


def torch_flat_grad(run: Any) -> np.ndarray:
    import torch

    return torch.cat([p.grad.reshape(-1).float().cpu() for p in run.stepper.clipper.params]).numpy().copy()


# ------------------------------------------------------------------ spawned workers
def _worker_main(rank: int, world: int, port: int, conn: Any) -> None:
    """Entry of a spawned worker: payload from the pipe, join the group, agree, serve."""
    import torch
    import torch.distributed as dist

    try:
        payload = conn.recv()
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        if payload["backend"] == "nccl":
            torch.cuda.set_device(rank)  # one GPU per rank: "cuda" below means this rank's device
        store = dist.TCPStore(HOST, port, world, is_master=False, timeout=dt.timedelta(seconds=TIMEOUT_S))
        dist.init_process_group(payload["backend"], store=store, rank=rank, world_size=world,
                                timeout=dt.timedelta(seconds=TIMEOUT_S))
        run = build_rank(payload["shard"], payload["cfg"], payload["plan"], payload["encoder"], rank, world,
                         payload.get("loss_fn"))
        del payload["shard"]
        if payload.get("resume") is not None:
            _load_replica(run, payload["resume"], payload["sampler"])
        agree(run, rank, world)
        probe: list[Any] | None = [] if payload.get("probe") else None
        serve(run, probe)
        conn.send({"ok": True, "probe": probe})
        dist.destroy_process_group()
    except BaseException as exc:  # noqa: BLE001 - report one line to rank 0, then exit non-zero
        try:
            conn.send({"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        except Exception:  # noqa: BLE001 - the parent may be gone
            pass
        os._exit(1)


def _backend(device: Any) -> str:
    return "nccl" if getattr(device, "type", str(device)) == "cuda" else "gloo"


class DistributedRun:
    """Rank 0 of a W-process run, driving spawned workers; looks like `trainer._Run` to its callers.

    `run(stop_after)` tells the workers how far to go, steps rank 0's own shard
    in lock-step with them (every step ends in the all-reduce), then gathers
    their sampler states so `state_dict()` can checkpoint every rank. Any
    failure (a worker killed, a timeout, a disagreement) raises
    `DistributedFailure` with one line and tears the group down."""

    def __init__(self, train_df: pd.DataFrame, cfg: Any, pplan: Any, world: int, *,
                 checkpoint: dict[str, Any] | None = None, loss_fn: Callable[..., Any] | None = None,
                 probe: bool = False) -> None:
        import multiprocessing as _mp

        import torch
        import torch.distributed as dist

        from training.trainer import bound_rows_per_unit, build_encoder, require_poisson

        require_poisson(cfg)
        if world < 2:
            raise InputError(f"nproc: a distributed run needs at least 2 processes, got {world}")
        if dist.is_initialized():
            raise InputError("nproc: this process already belongs to a torch.distributed group")
        self.world = world
        # W processes share the cores: rank 0 takes its share like the workers (an oversubscribed
        # intra-op pool spins against the others and was measured 10x slower per step under load)
        self._threads = torch.get_num_threads()
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        self.probe: list[Any] | None = [] if probe else None
        self.worker_probes: list[Any] = []
        if checkpoint is not None:
            from training.features import FeatureEncoder

            enc = FeatureEncoder.from_state(checkpoint["encoder"])
        else:
            enc = build_encoder(bound_rows_per_unit(train_df, cfg), cfg)
        parts = shards(train_df, cfg.unit_column, world)
        samplers = checkpoint["dist"]["samplers"] if checkpoint is not None else [None] * world
        device = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
        if device == "cuda" and torch.cuda.device_count() < world:
            raise InputError(f"nproc: {world} processes need {world} GPUs for NCCL (one per rank), found "
                             f"{torch.cuda.device_count()}; use fewer processes or device: cpu")
        backend = _backend(torch.device(device))
        ctx = _mp.get_context("spawn")
        self._store = dist.TCPStore(HOST, 0, world, is_master=True, timeout=dt.timedelta(seconds=TIMEOUT_S),
                                    wait_for_workers=False)
        self._procs, self._conns = [], []
        try:
            for r in range(1, world):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker_main, args=(r, world, self._store.port, child), daemon=True,
                                   name=f"privgov-dp-rank{r}")
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
                rep = None if checkpoint is None else {k: checkpoint[k] for k in ("model", "optimizer", "history")}
                parent.send({"backend": backend, "shard": parts[r], "cfg": cfg, "plan": pplan,
                             "encoder": enc.state(), "resume": rep, "sampler": samplers[r], "loss_fn": loss_fn,
                             "probe": probe})
            dist.init_process_group(backend, store=self._store, rank=0, world_size=world,
                                    timeout=dt.timedelta(seconds=TIMEOUT_S))
            self._run = build_rank(parts[0], cfg, pplan, enc.state(), 0, world, loss_fn)
            if checkpoint is not None:
                _load_replica(self._run, checkpoint, samplers[0])
                self._run.noise_rng.load_state_dict(checkpoint["noise_rng"])
            del parts
            self.facts = agree(self._run, 0, world)
        except BaseException as exc:
            self._fail(exc)
        self._worker_samplers: list[Any] = list(samplers[1:])

    # the _Run surface finish_run and the governed loop use
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._run, name)

    @property
    def steps_done(self) -> int:
        return int(self._run.steps_done)

    def run(self, stop_after: int | None = None, progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        import torch
        import torch.distributed as dist

        end = self._run.plan.steps if stop_after is None else min(self._run.plan.steps, stop_after)
        try:
            dist.broadcast(torch.tensor([_RUN, end], dtype=torch.long), 0)
            _run_until(self._run, end, self.probe, progress)
            states: list[Any] = [None] * self.world
            dist.gather_object(self._run.sampler.state_dict(), states, dst=0)
            self._worker_samplers = states[1:]
        except BaseException as exc:
            self._fail(exc)
        if self.steps_done >= self._run.plan.steps:
            self.close()

    def state_dict(self) -> dict[str, Any]:
        """`_Run.state_dict` plus every rank's sampler state (their keys: encrypted checkpoint only)."""
        st = self._run.state_dict()
        st["dist"] = {"world": self.world, "samplers": [st["sampler"], *self._worker_samplers]}
        return st

    def close(self) -> None:
        """Stop the workers (they send their probes back) and leave the group."""
        import torch
        import torch.distributed as dist

        if not self._procs:
            return
        try:
            dist.broadcast(torch.tensor([_STOP, 0], dtype=torch.long), 0)
            for conn in self._conns:
                msg = conn.recv() if conn.poll(TIMEOUT_S) else {"ok": False, "error": "no answer"}
                if not msg.get("ok"):
                    raise DistributedFailure(f"worker: {msg.get('error')}")
                if msg.get("probe") is not None:
                    self.worker_probes.append(msg["probe"])
            for proc in self._procs:
                proc.join(TIMEOUT_S)
        except BaseException as exc:
            self._fail(exc)
        self._teardown()

    def _teardown(self) -> None:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(self._threads)

        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        self._procs = []
        for conn in self._conns:
            conn.close()
        self._conns = []
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - a broken group may not tear down cleanly
                pass

    def _fail(self, exc: BaseException) -> None:
        """One line naming the rank that failed, never a traceback; workers are stopped."""
        why = None
        for r, (proc, conn) in enumerate(zip(self._procs, self._conns), start=1):
            try:
                if conn.poll(0.5):
                    msg = conn.recv()
                    if not msg.get("ok"):
                        why = f"rank {r} failed: {msg.get('error')}"
                        break
            except (EOFError, OSError):
                pass
            proc.join(0.5)
            if proc.exitcode is not None and proc.exitcode != 0:
                why = f"rank {r} died (exit {proc.exitcode})"
                break
        self._teardown()
        if isinstance(exc, PrivgovError) and why is None:
            raise exc
        detail = why or f"rank 0: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        raise DistributedFailure(f"distributed training stopped: {detail}; the run's budget reservation stays "
                                 "charged; finish it with `privgov run PIPELINE --resume RUN --nproc N`") from None


def start_distributed(train_df: pd.DataFrame, cfg: Any, pplan: Any, world: int, **kw: Any) -> DistributedRun:
    """Rank 0 here, W-1 spawned workers, plan agreed: ready to `run`."""
    return DistributedRun(train_df, cfg, pplan, world, **kw)


def resume_distributed(raw: bytes, train_df: pd.DataFrame, cfg: Any, pplan: Any, world: int) -> DistributedRun:
    """Continue a distributed run from its checkpoint with the same number of processes.

    Why the same W: shards and each rank's sampler state (its key, counter and
    representatives) belong to one partition of the units."""
    import torch

    from training.trainer import check_checkpoint_plan, require_poisson

    require_poisson(cfg)
    try:
        st = torch.load(io.BytesIO(raw), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - foreign bytes
        raise InputError(f"checkpoint: not a privgov training checkpoint ({type(exc).__name__})") from None
    check_checkpoint_plan(st, pplan)
    saved_world = int(st.get("dist", {}).get("world", 1))
    if saved_world != world:
        raise InputError(f"--nproc: the checkpoint was taken with {saved_world} process(es); resume with "
                         f"--nproc {saved_world}")
    return DistributedRun(train_df, cfg, pplan, world, checkpoint=st)


# ------------------------------------------------------------------ torchrun entry
def _main(argv: list[str] | None = None) -> int:
    """`torchrun --nproc-per-node W -m training.distributed DATA.csv --target COL [--epsilon E ...]`.

    Every rank reads the CSV, keeps only its shard, trains; rank 0 prints the
    result as JSON. Ungoverned: nothing is reserved on a ledger (use
    `privgov run PIPELINE --nproc W` for that)."""
    import argparse
    import json

    import torch
    import torch.distributed as dist

    from training.trainer import TrainConfig, build_encoder, count_units, finish_run, plan

    ap = argparse.ArgumentParser(prog="python -m training.distributed")
    ap.add_argument("data")
    ap.add_argument("--target", required=True)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--max-units", type=int, required=True, help="declared bound on the rows (q = batch / it)")
    ap.add_argument("--hidden", type=int, nargs="*", default=[64])
    args = ap.parse_args(argv)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        df = pd.read_csv(args.data)
        cfg = TrainConfig(target=args.target, epsilon=args.epsilon, delta=args.delta, epochs=args.epochs,
                          batch_size=args.batch_size, max_units=args.max_units, hidden=args.hidden, device="cpu",
                          encoder="fit_on_data")
        pplan = plan(count_units(df, cfg)[0], cfg)
        dist.init_process_group("gloo", timeout=dt.timedelta(seconds=TIMEOUT_S))
        enc = build_encoder(df, cfg)  # fit on the whole file on every rank: identical everywhere
        run = build_rank(shards(df, None, world)[rank], cfg, pplan, enc.state(), rank, world)
        agree(run, rank, world)
        run.run()
        if rank == 0:
            res = finish_run(run, None, cfg)
            print(json.dumps({"epsilon": res.epsilon_spent, "delta": res.delta, "sigma": res.sigma,
                              "sample_rate": res.sample_rate, "steps": res.steps, "world": world,
                              "encoder": "fit_on_data: the feature encoding is NOT covered by epsilon",
                              "plan": {k: v for k, v in asdict(pplan).items() if k not in ("orders", "rdp")}}))
        dist.barrier()
        dist.destroy_process_group()
        del torch
        return 0
    except PrivgovError as exc:
        print(f"error: rank {rank}: {exc}")
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(_main())
