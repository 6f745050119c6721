"""Poisson sampling on the device, with privacy-unit bounding.

Why on the device: for tabular data a per-sample CPU DataLoader is the
bottleneck of DP training (GUIDE, reference figures). The dataset stays
resident on the GPU (or CPU) and every step draws one Bernoulli(q) coin per
eligible unit (`torch.rand(n, device) < q`), giving the variable batch size the
Poisson-subsampled Gaussian accountant assumes.

Privacy units: when several rows belong to one unit (e.g. a patient), the
default `one_row_per_unit` bounding picks one row per unit per epoch at random
(re-drawn each epoch by the seeded generator), so each step touches a unit at
most once and epsilon is per unit with q = expected batch / n_units. `group`
bounding keeps all rows (q over rows) and the plan converts the guarantee with
group privacy at the largest group size.

Fixed-size shuffled batches are NOT what the accountant analyses; they are
refused unless `sampler="shuffle_unsafe"` is chosen, which labels the run.
"""
from __future__ import annotations

from typing import Any

import torch

from privacy.errors import InputError

SAMPLERS = ("poisson", "shuffle_unsafe")
BOUNDINGS = ("one_row_per_unit", "group")


def check_sampler(sampler: str) -> None:
    if sampler == "poisson" or sampler == "shuffle_unsafe":
        return
    if sampler in ("shuffle", "shuffled", "fixed", "uniform", "random"):
        raise InputError(
            f"sampler: {sampler!r} gives fixed-size shuffled batches, which Poisson accounting does not cover; "
            "use 'poisson' or explicitly opt in with 'shuffle_unsafe' (result is labelled NOT Poisson-accounted)"
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
    State (generator state, step counter, current representatives) is
    checkpointable so a resumed run draws exactly the batches an uninterrupted
    run would have drawn.
    """

    def __init__(self, n_rows: int, sample_rate: float, *, units: torch.Tensor | None = None,
                 bounding: str = "one_row_per_unit", sampler: str = "poisson",
                 device: torch.device | str = "cpu", seed: int = 0) -> None:
        check_sampler(sampler)
        if bounding not in BOUNDINGS:
            raise InputError(f"bounding: expected one of {BOUNDINGS}, got {bounding!r}")
        if not (0.0 < sample_rate <= 1.0):
            raise InputError(f"sample_rate: expected 0 < q <= 1, got {sample_rate}")
        self.device = torch.device(device)
        self.n_rows = int(n_rows)
        self.q = float(sample_rate)
        self.sampler = sampler
        self.bounding = bounding if units is not None else "none"
        self.units = units.to(self.device) if units is not None else None
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.steps_done = 0
        if self.units is not None and self.bounding == "one_row_per_unit":
            self.n_units = int(self.units.max().item()) + 1 if self.units.numel() else 0
        else:
            self.n_units = self.n_rows
        self.steps_per_epoch = max(1, int(round(1.0 / self.q)))
        self._pool: torch.Tensor | None = None
        self._perm: torch.Tensor | None = None

    # ------------------------------------------------------------ epochs
    def _draw_pool(self) -> torch.Tensor:
        """Eligible rows for this epoch: one random row per unit, or every row."""
        if self.units is None or self.bounding != "one_row_per_unit":
            return torch.arange(self.n_rows, device=self.device)
        perm = torch.randperm(self.n_rows, device=self.device, generator=self.generator)
        u = self.units[perm]
        order = torch.sort(u, stable=True).indices
        u_sorted = u[order]
        first = torch.ones_like(u_sorted, dtype=torch.bool)
        first[1:] = u_sorted[1:] != u_sorted[:-1]
        return perm[order][first]

    def _epoch_start(self) -> None:
        self._pool = self._draw_pool()
        if self.sampler == "shuffle_unsafe":
            self._perm = self._pool[torch.randperm(self._pool.numel(), device=self.device, generator=self.generator)]

    def sample(self) -> torch.Tensor:
        if self._pool is None or self.steps_done % self.steps_per_epoch == 0:
            self._epoch_start()
        assert self._pool is not None
        k = self.steps_done % self.steps_per_epoch
        self.steps_done += 1
        if self.sampler == "shuffle_unsafe":
            assert self._perm is not None
            size = -(-self._perm.numel() // self.steps_per_epoch)
            return self._perm[k * size:(k + 1) * size]
        mask = torch.rand(self._pool.numel(), device=self.device, generator=self.generator) < self.q
        return self._pool[mask]

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "steps_done": self.steps_done,
            "pool": None if self._pool is None else self._pool.cpu(),
            "perm": None if self._perm is None else self._perm.cpu(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.steps_done = int(state["steps_done"])
        self._pool = None if state["pool"] is None else state["pool"].to(self.device)
        self._perm = None if state["perm"] is None else state["perm"].to(self.device)
