"""INSECURE: the seed-derived generators privgov used before issue 11. Tests and audits only.

Why it exists: the empirical privacy audit must be able to show that a run
whose masks and noise derive from the published `seed:` leaks (whoever reads
the model card regenerates the noise and subtracts it), and tests need
reproducible draws. `SeededRandom` reproduces the old behaviour exactly
(`torch.Generator(device).manual_seed(seed)`; masks `torch.rand < q`,
permutations `torch.randperm`, noise `torch.randn`, the noise seeded with
seed + 7919), and `start_seeded_run` trains through the normal trainer with
it.

Nothing outside tests, benchmarks' comparison rows and audits may import
this module; tests/training/test_secure_random.py fails if governance/,
privacy/ or any other training module does.
"""
from __future__ import annotations

from typing import Any

import torch

from privacy.errors import InputError

NOISE_SEED_OFFSET = 7919
DESCRIPTION = "INSECURE seeded torch.Generator (masks and noise derive from `seed`): NOT differentially private"


class SeededRandom:
    """A `RandomSource` over a seeded torch.Generator. Predictable: never for a real run."""

    description = DESCRIPTION

    def __init__(self, device: torch.device | str = "cpu", seed: int = 0) -> None:
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))

    def uniform(self, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.rand(n, device=self.device, generator=self.generator, dtype=dtype)

    def bernoulli_mask(self, n: int, q: float) -> torch.Tensor:
        return torch.rand(n, device=self.device, generator=self.generator) < q

    def randperm(self, n: int) -> torch.Tensor:
        return torch.randperm(n, device=self.device, generator=self.generator)

    def normal(self, n: int, std: float = 1.0, *, out: torch.Tensor | None = None) -> torch.Tensor:
        z = torch.randn(n, device=self.device, generator=self.generator).mul_(float(std))
        return z if out is None else out.copy_(z)

    def state_dict(self) -> dict[str, Any]:
        return {"algorithm": "insecure-seeded-torch-generator", "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("algorithm") != "insecure-seeded-torch-generator":
            raise InputError("checkpoint: not a seeded-generator state")
        self.generator.set_state(state["generator"])


def seeded_rngs(seed: int) -> Any:
    """A trainer `rngs` factory giving the pre-issue-11 (sampling, noise) generators for `seed`."""

    def make(device: Any) -> tuple[SeededRandom, SeededRandom]:
        return SeededRandom(device, seed), SeededRandom(device, seed + NOISE_SEED_OFFSET)

    return make


def start_seeded_run(train_df: Any, cfg: Any, pplan: Any) -> Any:
    """`training.trainer.start_run`, but with masks and noise derived from `cfg.seed`. LEAKS; audits only."""
    from training.trainer import _Run

    return _Run(train_df, cfg, pplan, rngs=seeded_rngs(cfg.seed))


__all__ = ["SeededRandom", "seeded_rngs", "start_seeded_run"]
