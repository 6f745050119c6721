"""The DP step loop: Poisson batch -> per-sample clipping -> noise -> optimizer.

Why one class for the trainer and the benchmark: the throughput figure must be
the speed of the code that trains real models. Data tensors stay resident on
the device; batches are gathered by index, never through a DataLoader.

On CUDA with book-keeping clipping the whole step after sampling (gather,
forward, backward, norms, clipped sum, noise, optimizer) is captured in CUDA
graphs over fixed row counts (*buckets*); a Poisson batch of k rows replays
the smallest bucket >= k, fills the first k slots, and the rest get weight 0,
which zeroes their loss and hence their gradient, norm and contribution
exactly. Buckets are about one standard deviation of k apart (multiples of 8)
up to the *capacity* E[k] + 6 sd + 16, so padding costs ~sd/2 rows per step
instead of ~6 sd; all bucket graphs share one memory pool (they never run
concurrently) and are captured together on the first step. Batches larger
than the capacity (probability < 1e-9) and empty batches take the eager path,
so every step is an exact Poisson step.

Randomness: batches and noise come from the sampler's and the stepper's
`RandomSource`s (per-run `SecureRandom` by default, never the pipeline seed).
A graph cannot call the generator, so before every replay the step's noise
is drawn - the same one draw an eager step makes, at the same point of the
stream - into a fixed-address buffer that the captured `finalize` reads.
Capture and warm-up read a zero buffer and draw nothing, so graph and eager
runs (and resumed runs) consume identical streams.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from privacy.errors import InputError
from training.bookkeeping import BookKeepingClipper, ClippedSumBase
from training.sampling import PoissonSampler
from training.secure_random import RandomSource, SecureRandom

CLIPPINGS = ("bookkeeping", "ghost", "per_sample")


class OpacusClipper(ClippedSumBase):
    """Same interface as BookKeepingClipper on top of Opacus' grad-sample modules.

    `per_sample`: Opacus GradSampleModule hooks materialize per-sample grads.
    `ghost`: Opacus GradSampleModuleFastGradientClipping (norms in a first
    backward, clipped sum from a second, weighted backward).
    """

    def __init__(self, model: nn.Module, max_grad_norm: float, noise_multiplier: float,
                 expected_batch_size: float, rng: RandomSource | None = None,
                 mode: str = "per_sample") -> None:
        from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping

        super().__init__(model, max_grad_norm, noise_multiplier, expected_batch_size, rng)
        self.mode = mode
        if mode == "ghost":
            self.gsm = GradSampleModuleFastGradientClipping(model, loss_reduction="sum",
                                                            max_grad_norm=max_grad_norm, use_ghost_clipping=True)
        else:
            self.gsm = GradSampleModule(model, loss_reduction="sum")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.gsm(*inputs)

    def backward(self, per_sample_loss: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        loss = per_sample_loss.float() * (weights if weights is not None else 1.0)
        for p in self.params:
            p.grad = None
        if self.mode == "ghost":
            loss.sum().backward(retain_graph=True)
            norms = self.gsm.get_norm_sample()
            coef = self.gsm.get_clipping_coef()
            for p in self.params:
                p.grad = None
            self.gsm.disable_hooks()
            (coef.detach() * loss).sum().backward()
            self.gsm.enable_hooks()
            self._ghost_norms = norms.detach()
        else:
            loss.sum().backward()

    def per_sample_norms(self) -> torch.Tensor:
        if self.mode == "ghost":
            return self._ghost_norms
        gs = [p.grad_sample.reshape(p.grad_sample.shape[0], -1) for p in self.params]
        norms = torch.cat(gs, dim=1).norm(2, dim=1)
        return norms

    def clip_accumulate(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        norms = self.per_sample_norms()
        if self.mode == "ghost":
            for p in self.params:
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                self._sum[p] = self._sum[p] + g if p in self._sum else g.clone()
        else:
            c = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
            if weights is not None:
                c = c * weights
            for p in self.params:
                g = torch.einsum("b,b...->...", c, p.grad_sample)
                self._sum[p] = self._sum[p] + g if p in self._sum else g
                p.grad_sample = None
        self.last_norms = norms
        return norms

    def detach(self) -> None:
        self.gsm._close() if hasattr(self.gsm, "_close") else None


def make_optimizer(name: str, params: Sequence[nn.Parameter], lr: float, *, weight_decay: float = 0.0,
                   momentum: float = 0.9, capturable: bool = False) -> torch.optim.Optimizer:
    """`sgd` (momentum) or `adam`; capturable=True for CUDA-graph replay."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, capturable=capturable)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, capturable=capturable)
    raise InputError(f"optimizer: expected 'sgd', 'adam' or 'adamw', got {name!r}")


class DPStepper:
    """Runs DP-SGD steps on device-resident tensors.

    `data` are the model inputs (row-aligned), `y` integer labels. `step()`
    draws one Poisson batch and applies one noisy update; it returns nothing
    and never synchronizes except to learn the batch size. `graph_buckets=True`
    captures one graph per batch-size bucket (less padding per step). It is
    off by default: it has not yet been run on a GPU, while the single
    capacity graph is the path measured in benchmarks/results (H100).
    """

    def __init__(self, model: nn.Module, data: Sequence[torch.Tensor], y: torch.Tensor,
                 sampler: PoissonSampler, optimizer: torch.optim.Optimizer, *, noise_multiplier: float,
                 max_grad_norm: float, expected_batch_size: float, clipping: str = "bookkeeping",
                 amp: bool = False, physical_batch: int | None = None, cuda_graph: bool = True,
                 noise_rng: RandomSource | None = None, loss_fn: Callable[..., torch.Tensor] | None = None,
                 graph_buckets: bool = False) -> None:
        if clipping not in CLIPPINGS:
            raise InputError(f"clipping: expected one of {CLIPPINGS}, got {clipping!r}")
        self.model, self.data, self.y = model, list(data), y
        self.sampler, self.optimizer = sampler, optimizer
        self.device = y.device
        self.amp = bool(amp)
        self.physical_batch = physical_batch
        self.loss_fn = loss_fn or (lambda out, t: F.cross_entropy(out.float(), t, reduction="none"))
        self.noise_rng = noise_rng if noise_rng is not None else SecureRandom(self.device, prefetch=True)
        if clipping == "bookkeeping":
            self.clipper: Any = BookKeepingClipper(model, max_grad_norm, noise_multiplier, expected_batch_size,
                                                   self.noise_rng)
            self._forward = model
        else:
            self.clipper = OpacusClipper(model, max_grad_norm, noise_multiplier, expected_batch_size,
                                         self.noise_rng, mode=clipping)
            self._forward = self.clipper.forward
        self.loss_sum = torch.zeros((), device=self.device)
        self.rows_seen = torch.zeros((), device=self.device)
        self.empty_steps = 0
        self.graph_steps = 0
        self.graph_error: str | None = None
        self._graphs: dict[int, Any] = {}
        self._noise_buf: torch.Tensor | None = None
        q, n = sampler.q, sampler.n_units
        mean = q * n
        self.capacity = int(math.ceil(mean + 6.0 * math.sqrt(max(mean * (1 - q), 1.0)) + 16))
        self.capacity = min(self.capacity, max(n, 1))
        self.buckets = self._bucket_sizes(mean, q) if graph_buckets else [self.capacity]
        self.use_graph = (cuda_graph and self.device.type == "cuda" and clipping == "bookkeeping"
                          and sampler.sampler == "poisson"
                          and (physical_batch is None or physical_batch >= self.capacity))

    # ----------------------------------------------------------- eager path
    def _autocast(self) -> Any:
        if self.amp:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _chunk(self, idx: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        with self._autocast():
            out = self._forward(*[t[idx] for t in self.data])
        losses = self.loss_fn(out, self.y[idx])
        w = weights
        self.clipper.backward(losses, w)
        self.clipper.clip_accumulate(w)
        lw = losses.detach() if w is None else losses.detach() * w
        self.loss_sum += lw.sum()
        self.rows_seen += float(idx.numel()) if w is None else w.sum()

    def _eager_step(self, idx: torch.Tensor) -> None:
        if idx.numel() == 0:
            self.empty_steps += 1  # noise-only step: still a Poisson step, still accounted
        else:
            pb = self.physical_batch or idx.numel()
            for s in range(0, idx.numel(), pb):
                self._chunk(idx[s:s + pb])
        self.clipper.finalize()
        self.optimizer.step()

    # ----------------------------------------------------------- graph path
    def _bucket_sizes(self, mean: float, q: float) -> list[int]:
        sd = math.sqrt(max(mean * (1 - q), 1.0))
        step = 8 * max(1, math.ceil(sd / 8))
        lo = max(step, int((mean - 4 * sd) // step) * step)
        return [b for b in range(lo, self.capacity, step)] + [self.capacity]

    def _graph_body(self, rows: int) -> None:
        w = (self._arange[:rows] < self._k).float()
        self._chunk(self._idx[:rows], w)
        self.clipper.finalize()
        self.optimizer.step()

    def _snapshot(self) -> tuple[list[torch.Tensor], dict[int, dict[str, Any]]]:
        params = [p.detach().clone() for p in self.model.parameters()]
        state = {id(p): {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
                 for p, s in self.optimizer.state.items()}
        return params, state

    def _restore(self, snap: tuple[list[torch.Tensor], dict[int, dict[str, Any]]]) -> None:
        params, state = snap
        with torch.no_grad():
            for p, v in zip(self.model.parameters(), params):
                p.copy_(v)
            for p, s in self.optimizer.state.items():
                old = state.get(id(p))
                for k, v in s.items():
                    if torch.is_tensor(v):
                        v.copy_(old[k]) if old is not None and k in old else v.zero_()
        self.loss_sum.zero_()
        self.rows_seen.zero_()

    def _static_inputs(self) -> None:
        """Fixed-address inputs of the captured step: row indices, k, slot numbers."""
        cap = self.capacity
        self._idx = torch.zeros(cap, dtype=torch.long, device=self.device)
        self._k = torch.zeros((), dtype=torch.long, device=self.device)
        self._arange = torch.arange(cap, device=self.device)
        self._noise_buf = (torch.zeros(self.clipper.n_params, device=self.device)
                           if self.clipper.noise_std > 0 else None)

    def _load(self, idx: torch.Tensor) -> int:
        """Put a batch of 0 < k <= capacity rows into the static inputs; returns its bucket."""
        k = idx.numel()
        rows = self.buckets[bisect.bisect_left(self.buckets, k)]
        self._idx[:k].copy_(idx)
        self._idx[k:rows].zero_()
        self._k.fill_(k)
        return rows

    def _build_graph(self) -> None:
        self._static_inputs()
        self.clipper.static_noise = self._noise_buf  # captured finalize reads it; capture draws nothing
        loss0, rows0 = self.loss_sum.clone(), self.rows_seen.clone()
        snap = self._snapshot()
        try:
            pool = torch.cuda.graph_pool_handle()
            for i, rows in enumerate(self.buckets):
                # Warm-up with k=0 (all weights zero: no record influences anything),
                # then restore parameters and optimizer state exactly.
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(3 if i == 0 else 1):
                        self._graph_body(rows)
                torch.cuda.current_stream().wait_stream(side)
                self._restore(snap if snap[1] else (snap[0], {}))
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g, pool=pool):
                    self._graph_body(rows)
                self._graphs[rows] = g
        except Exception as exc:  # fall back to eager; record why for the benchmark
            self.graph_error = f"{type(exc).__name__}: {exc}"[:300]
            self.use_graph = False
            self._graphs = {}
            self.clipper._clear() if hasattr(self.clipper, "_clear") else None
            self._restore(snap)
        finally:
            self.clipper.static_noise = None  # eager steps draw their own noise
            self.loss_sum.copy_(loss0)
            self.rows_seen.copy_(rows0)

    def step(self) -> None:
        idx = self.sampler.sample()
        k = idx.numel()
        if self.clipper.sum_hook is not None:  # an audit's canary hook draws per step: a graph would freeze it
            self.use_graph = False
        if self.use_graph and not self._graphs:
            self._build_graph()
        if self.use_graph and 0 < k <= self.capacity:
            rows = self._load(idx)
            if self._noise_buf is not None:
                self.clipper.draw_noise(out=self._noise_buf)
            self._graphs[rows].replay()
            self.graph_steps += 1
            return
        self._eager_step(idx)

    def take_epoch_stats(self) -> tuple[float, float]:
        """(mean training loss, rows seen) since the last call; one sync."""
        rows = float(self.rows_seen.item())
        loss = float(self.loss_sum.item()) / max(rows, 1.0)
        self.loss_sum.zero_()
        self.rows_seen.zero_()
        return loss, rows
