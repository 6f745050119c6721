"""Poisson sampling on the device, with privacy-unit bounding.

Why on the device: for tabular data a per-sample CPU DataLoader is the
bottleneck of DP training (GUIDE, reference figures). The dataset stays
resident on the GPU (or CPU) and every step draws one Bernoulli(q) coin per
eligible unit, giving the variable batch size the Poisson-subsampled Gaussian
accountant assumes.

Whose coins: the accountant's guarantee holds only if nobody can predict the
masks, so they come from a `RandomSource` - in every accounted run a
`training.secure_random.SecureRandom` keyed per run from the OS, never from
the pipeline's published `seed:` (issue 11). A sampler built without one gets
a fresh SecureRandom.

Privacy units: when several rows belong to one unit (e.g. a patient), the
default `one_row_per_unit` bounding picks one row per unit per epoch at random
(re-drawn each epoch from the same generator), so each step touches a unit at
most once and epsilon is per unit with q = expected batch / n_units. `group`
bounding keeps all rows (q over rows) and the plan converts the guarantee with
group privacy at the largest group size.

Fixed-size shuffled batches are NOT what the accountant analyses. They exist
only as `UnsafeShuffledBatches`, for non-private benchmarks; the trainer's
accounted entry points refuse them (`training.trainer.train_unsafe_shuffled`
is the one clearly named way to use them).
"""
from __future__ import annotations

from typing import Any

import torch

from privacy.errors import InputError
from training.secure_random import RandomSource, SecureRandom

SAMPLERS = ("poisson", "shuffle_unsafe")
BOUNDINGS = ("one_row_per_unit", "group")


def check_sampler(sampler: str) -> None:
    if sampler == "poisson" or sampler == "shuffle_unsafe":
        return
    if sampler in ("shuffle", "shuffled", "fixed", "uniform", "random"):
        raise InputError(
            f"sampler: {sampler!r} gives fixed-size shuffled batches, which Poisson accounting does not cover; "
            "use 'poisson' (fixed-size batches exist only as 'shuffle_unsafe' for non-private benchmarks)"
        )
    raise InputError(f"sampler: expected one of {SAMPLERS}, got {sampler!r}")


def unit_codes(units: Any, device: torch.device | str = "cpu") -> tuple[torch.Tensor, int, int]:
    """Map unit ids (any hashable values) to codes 0..U-1; returns (codes, U, max_rows_per_unit)."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(units), use_na_sentinel=False)
    t = torch.as_tensor(codes, dtype=torch.long, device=device)
    counts = torch.bincount(t) if t.numel() else torch.zeros(1, dtype=torch.long)
    return t, len(uniques), int(counts.max().item()) if t.numel() else 0


class PoissonSampler:
    """Per-step Bernoulli(q) sampling of units, one representative row per unit per epoch.

    `sample()` returns the row indices of the next logical batch (possibly empty).
    State (the generator's key and counter, step counter, current
    representatives) is checkpointable so a resumed run draws exactly the
    batches an uninterrupted run would have drawn.
    """

    sampler = "poisson"

    def __init__(self, n_rows: int, sample_rate: float, *, units: torch.Tensor | None = None,
                 bounding: str = "one_row_per_unit", device: torch.device | str = "cpu",
                 rng: RandomSource | None = None) -> None:
        if bounding not in BOUNDINGS:
            raise InputError(f"bounding: expected one of {BOUNDINGS}, got {bounding!r}")
        if not (0.0 < sample_rate <= 1.0):
            raise InputError(f"sample_rate: expected 0 < q <= 1, got {sample_rate}")
        self.device = torch.device(device)
        self.rng = rng if rng is not None else SecureRandom(self.device)
        if self.rng.device.type != self.device.type:
            raise InputError(f"rng: on {self.rng.device} but the sampler runs on {self.device}")
        self.n_rows = int(n_rows)
        self.q = float(sample_rate)
        self.bounding = bounding if units is not None else "none"
        self.units = units.to(self.device) if units is not None else None
        self.steps_done = 0
        if self.units is not None and self.bounding == "one_row_per_unit":
            self.n_units = int(self.units.max().item()) + 1 if self.units.numel() else 0
        else:
            self.n_units = self.n_rows
        self.steps_per_epoch = max(1, int(round(1.0 / self.q)))
        self._pool: torch.Tensor | None = None

    # ------------------------------------------------------------ epochs
    def _draw_pool(self) -> torch.Tensor:
        """Eligible rows for this epoch: one random row per unit, or every row."""
        if self.units is None or self.bounding != "one_row_per_unit":
            return torch.arange(self.n_rows, device=self.device)
        perm = self.rng.randperm(self.n_rows)
        u = self.units[perm]
        order = torch.sort(u, stable=True).indices
        u_sorted = u[order]
        first = torch.ones_like(u_sorted, dtype=torch.bool)
        first[1:] = u_sorted[1:] != u_sorted[:-1]
        return perm[order][first]

    def _epoch_start(self) -> None:
        self._pool = self._draw_pool()

    def _next_epoch_due(self) -> bool:
        return self._pool is None or self.steps_done % self.steps_per_epoch == 0

    def sample(self) -> torch.Tensor:
        if self._next_epoch_due():
            self._epoch_start()
        assert self._pool is not None
        self.steps_done += 1
        return self._pool[self.rng.bernoulli_mask(self._pool.numel(), self.q)]

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Includes the generator's key: for the encrypted training checkpoint only."""
        return {
            "rng": self.rng.state_dict(),
            "steps_done": self.steps_done,
            "pool": None if self._pool is None else self._pool.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "rng" not in state:
            raise InputError("checkpoint: its sampler state predates the per-run secure generator (masks derived "
                             "from `seed`); start a new run")
        self.rng.load_state_dict(state["rng"])
        self.steps_done = int(state["steps_done"])
        self._pool = None if state["pool"] is None else state["pool"].to(self.device)


class UnsafeShuffledBatches(PoissonSampler):
    """Fixed-size batches from a shuffled pool each epoch. NOT Poisson, NOT covered by the accountant.

    Only for non-private benchmarks and comparisons; `training.trainer` refuses
    it for every accounted run.
    """

    sampler = "shuffle_unsafe"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._perm: torch.Tensor | None = None

    def _epoch_start(self) -> None:
        super()._epoch_start()
        assert self._pool is not None
        self._perm = self._pool[self.rng.randperm(self._pool.numel())]

    def sample(self) -> torch.Tensor:
        if self._next_epoch_due():
            self._epoch_start()
        assert self._perm is not None
        k = self.steps_done % self.steps_per_epoch
        self.steps_done += 1
        size = -(-self._perm.numel() // self.steps_per_epoch)
        return self._perm[k * size:(k + 1) * size]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "perm": None if self._perm is None else self._perm.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._perm = None if state.get("perm") is None else state["perm"].to(self.device)


def make_sampler(kind: str, n_rows: int, sample_rate: float, **kwargs: Any) -> PoissonSampler:
    """`poisson` -> PoissonSampler; `shuffle_unsafe` -> UnsafeShuffledBatches (callers decide if they may)."""
    check_sampler(kind)
    cls = PoissonSampler if kind == "poisson" else UnsafeShuffledBatches
    return cls(n_rows, sample_rate, **kwargs)
