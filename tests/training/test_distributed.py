"""Distributed DP-SGD (training/distributed.py) keeps the single-process guarantee.

Two real processes over gloo on 127.0.0.1: the noise summed across ranks has the
single-process standard deviation sigma*C (not sqrt(2) sigma*C), every replica
applies the same gradient, shards partition the data and each rank samples its
shard at rate q with its own key, and ranks that disagree on the plan refuse."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from privacy.errors import InputError
from tests.training.conftest import DECLARED, synthetic
from training.distributed import DistributedFailure, shard_of, shards, start_distributed
from training.trainer import TrainConfig, _Run, build_encoder, finish_run, plan

ALPHA = 1e-9  # per bound: a correct implementation fails this test about once in 10^9 runs


def zero_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example loss with zero gradient: whatever reaches p.grad is the noise alone.

    Module level so the spawned worker can unpickle it."""
    return out.float().sum(1) * 0.0


def _cfg(**kw) -> TrainConfig:
    base = dict(target="y", categorical=["c", "sex"], epochs=2, batch_size=200, device="cpu", hidden=[16],
                optimizer="sgd", lr=0.0, **DECLARED)
    base.update(kw)
    return TrainConfig(**base)


def test_summed_noise_has_single_process_std() -> None:
    """sum over ranks of the noise == N(0, sigma^2 C^2) per coordinate: a chi-square test on
    every coordinate of every step's gradient (times the expected batch) at alpha = 1e-9
    per side; doubled noise (each rank adding sigma C, i.e. sqrt(2) sigma C) is outside."""
    df = synthetic(2000)
    cfg = _cfg(max_grad_norm=0.5, hidden=[64])
    pplan = plan(len(df), cfg)
    run = start_distributed(df, cfg, pplan, 2, loss_fn=zero_loss, probe=True)
    run.run()
    assert run.steps_done == pplan.steps and not run._procs  # finished, workers stopped
    mine = np.stack(run.probe)
    theirs = np.stack(run.worker_probes[0])
    np.testing.assert_array_equal(mine, theirs)  # every replica applied the very same gradient
    noise = mine.astype(np.float64).ravel() * pplan.expected_batch_size
    n = noise.size
    assert n > 5000
    sd = pplan.sigma * cfg.max_grad_norm
    stat = float(np.sum(noise ** 2) / sd ** 2)  # ~ chi2(n) when the total noise is N(0, (sigma C)^2)
    lo, hi = stats.chi2.ppf(ALPHA, n), stats.chi2.isf(ALPHA, n)
    assert lo < stat < hi, f"noise std {np.sqrt(stat / n) * sd:.4f} vs sigma*C {sd:.4f}"
    doubled = stat / 2.0  # the same statistic if the true std were sqrt(2) sigma C
    assert not (lo < doubled < hi)
    assert abs(float(noise.mean())) < 6 * sd / np.sqrt(n)
    # ...and the ledger's epsilon is the single-process one: same plan, same accountant
    res = finish_run(run, None, cfg)
    assert res.epsilon_spent == plan(len(df), cfg).epsilon


def test_shards_partition_rows_and_units() -> None:
    df = synthetic(1001, units=300)
    for world in (2, 3):
        parts = shards(df, None, world)
        idx = np.concatenate([p.index.to_numpy() for p in parts])
        assert sorted(idx.tolist()) == df.index.tolist()  # every row exactly once
        parts = shards(df, "patient", world)
        idx = np.concatenate([p.index.to_numpy() for p in parts])
        assert sorted(idx.tolist()) == df.index.tolist()
        owners = [set(p["patient"]) for p in parts]
        for a in range(world):
            for b in range(a + 1, world):
                assert not owners[a] & owners[b]  # a unit never straddles two ranks
    with pytest.raises(InputError, match="unit_column"):
        shard_of(df, "nope", 2)


def test_each_rank_samples_its_shard_at_rate_q_with_its_own_key() -> None:
    """Each rank's sampler (built exactly as build_rank builds it) includes every row of its
    shard at rate q (binomial bounds at alpha = 1e-9); two ranks never share a key."""
    df = synthetic(2000)
    cfg = _cfg(batch_size=100)
    pplan = plan(len(df), cfg)
    enc = build_encoder(df, cfg)
    runs = [_Run(part, cfg, pplan, encoder=enc) for part in shards(df, None, 2)]
    steps = 300
    for run in runs:
        n = run.sampler.n_rows
        hits = np.zeros(n)
        for _ in range(steps):
            hits[run.sampler.sample().numpy()] += 1
        total = steps * n
        lo, hi = stats.binom.ppf(ALPHA, total, pplan.sample_rate), stats.binom.isf(ALPHA, total, pplan.sample_rate)
        assert lo < hits.sum() < hi
        # per row as well: no row is never or always drawn beyond chance
        assert hits.max() < stats.binom.isf(ALPHA / n, steps, pplan.sample_rate)
    keys = [bytes(r.sampler.rng.state_dict()["key"].tolist()) for r in runs]
    assert keys[0] != keys[1]


def _dissenting_rank(port: int, cfg: TrainConfig, pplan, enc_state, shard: pd.DataFrame, out) -> None:
    """Rank 1 with its own (different) plan, through the real build_rank/agree path."""
    import datetime as dt

    import torch.distributed as dist

    from training.distributed import HOST, agree, build_rank

    store = dist.TCPStore(HOST, port, 2, is_master=False, timeout=dt.timedelta(seconds=60))
    dist.init_process_group("gloo", store=store, rank=1, world_size=2, timeout=dt.timedelta(seconds=60))
    try:
        agree(build_rank(shard, cfg, pplan, enc_state, 1, 2), 1, 2)
        out.put("agreed")
    except DistributedFailure as exc:
        out.put(str(exc))
    dist.destroy_process_group()


def test_ranks_that_disagree_on_the_plan_refuse() -> None:
    """A rank with another model (so another hash) makes every rank refuse before any step."""
    import datetime as dt
    import multiprocessing as mp

    import torch.distributed as dist

    from training.distributed import HOST, agree, build_rank

    df = synthetic(600)
    cfg, other = _cfg(), _cfg(hidden=[8])
    pplan = plan(len(df), cfg)
    enc = build_encoder(df, cfg)
    a, b = shards(df, None, 2)
    store = dist.TCPStore(HOST, 0, 2, is_master=True, timeout=dt.timedelta(seconds=60), wait_for_workers=False)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_dissenting_rank, args=(store.port, other, pplan, enc.state(), b, out))
    proc.start()
    try:
        dist.init_process_group("gloo", store=store, rank=0, world_size=2, timeout=dt.timedelta(seconds=60))
        with pytest.raises(DistributedFailure, match="model_sha256") as err:
            agree(build_rank(a, cfg, pplan, enc.state(), 0, 2), 0, 2)
        assert "\n" not in str(err.value)
        assert "model_sha256" in out.get(timeout=60)  # the other rank refused too
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        proc.join(60)


def test_refuses_one_process_and_non_poisson() -> None:
    df = pd.DataFrame({"y": ["a", "b"]})
    with pytest.raises(InputError, match="at least 2"):
        start_distributed(df, _cfg(), plan(1000, _cfg()), 1)
    with pytest.raises(InputError, match="Poisson"):
        start_distributed(df, _cfg(sampler="shuffle_unsafe"), plan(1000, _cfg()), 2)
