import numpy as np
import pytest
import torch
from scipy import stats

from privacy.errors import InputError
from training.sampling import PoissonSampler, UnsafeShuffledBatches, make_sampler, unit_codes
from training.secure_random import SecureRandom


def test_poisson_batch_sizes_follow_binomial():
    n, q = 2000, 0.05
    s = PoissonSampler(n, q)
    sizes = np.array([s.sample().numel() for _ in range(3000)])
    # chi-square goodness of fit against Binomial(n, q), bins with expected count >= 5
    ks = np.arange(0, n + 1)
    pmf = stats.binom.pmf(ks, n, q)
    lo, hi = int(stats.binom.ppf(0.005, n, q)), int(stats.binom.ppf(0.995, n, q))
    obs = [np.sum(sizes < lo)] + [np.sum(sizes == k) for k in range(lo, hi + 1)] + [np.sum(sizes > hi)]
    exp = [pmf[:lo].sum()] + list(pmf[lo:hi + 1]) + [pmf[hi + 1:].sum()]
    exp = np.array(exp) * len(sizes)
    chi2, p = stats.chisquare(obs, exp / exp.sum() * np.sum(obs))
    assert p > 0.01, (chi2, p)
    assert abs(sizes.mean() - n * q) < 1.0


def test_records_included_independently_at_rate_q():
    n, q = 500, 0.1
    s = PoissonSampler(n, q)
    counts = torch.zeros(n)
    for _ in range(2000):
        counts[s.sample()] += 1
    rate = counts / 2000
    assert abs(rate.mean().item() - q) < 0.005
    assert rate.std().item() < 0.02  # every record has the same inclusion rate


def test_one_row_per_unit_per_epoch():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 50, 400)
    units, n_units, max_rows = unit_codes(raw)
    assert n_units == len(set(raw.tolist())) and max_rows > 1
    s = PoissonSampler(400, 0.2, units=units)
    assert s.n_units == n_units
    reps_seen = []
    for epoch in range(3):
        batches = [s.sample() for _ in range(s.steps_per_epoch)]
        for b in batches:  # within a step a unit appears at most once
            assert units[b].unique().numel() == b.numel()
        rows = torch.cat(batches).unique()  # Poisson: a unit may be drawn in several steps...
        u = units[rows]
        assert u.unique().numel() == u.numel(), "a unit contributed two different rows in one epoch"
        reps_seen.append(set(rows.tolist()))
    assert reps_seen[0] != reps_seen[1]  # representatives are re-drawn each epoch


def test_group_mode_keeps_all_rows():
    units = torch.tensor([0, 0, 0, 1, 1, 2])
    s = PoissonSampler(6, 0.5, units=units, bounding="group")
    assert s.n_units == 6


@pytest.mark.parametrize("name", ["shuffle", "fixed", "bogus"])
def test_shuffled_fixed_batches_refused(name):
    with pytest.raises(InputError, match="sampler"):
        make_sampler(name, 100, 0.1)


def test_poisson_sampler_has_no_shuffle_mode():
    with pytest.raises(TypeError):
        PoissonSampler(100, 0.1, sampler="shuffle_unsafe")  # the unsafe path is a separate, named class


def test_unsafe_shuffled_batches_are_fixed_size_and_labelled():
    s = make_sampler("shuffle_unsafe", 100, 0.1)
    assert isinstance(s, UnsafeShuffledBatches) and s.sampler == "shuffle_unsafe"
    batches = [s.sample() for _ in range(10)]
    assert {b.numel() for b in batches} == {10}
    assert torch.cat(batches).sort().values.tolist() == list(range(100))  # one epoch covers every row once


def test_default_generator_is_secure_and_fresh_per_sampler():
    a, b = PoissonSampler(300, 0.1), PoissonSampler(300, 0.1)
    assert isinstance(a.rng, SecureRandom)
    assert a.rng.state_dict()["key"].tolist() != b.rng.state_dict()["key"].tolist()
    draws_a = [a.sample() for _ in range(5)]
    draws_b = [b.sample() for _ in range(5)]
    assert any(not torch.equal(x, y) for x, y in zip(draws_a, draws_b))


def test_same_key_draws_same_batches():
    key = bytes(range(32))
    a, b = PoissonSampler(300, 0.1, rng=SecureRandom(key=key)), PoissonSampler(300, 0.1, rng=SecureRandom(key=key))
    for _ in range(5):
        assert torch.equal(a.sample(), b.sample())


def test_sampler_state_roundtrip():
    units, _, _ = unit_codes(np.random.default_rng(3).integers(0, 80, 300))
    for cls in (PoissonSampler, UnsafeShuffledBatches):
        a = cls(300, 0.1, units=units)
        for _ in range(7):
            a.sample()
        st = a.state_dict()
        nxt = [a.sample() for _ in range(15)]  # crosses an epoch: representatives re-drawn
        b = cls(300, 0.1, units=units)  # another fresh key, replaced by the saved one
        b.load_state_dict(st)
        for x in nxt:
            assert torch.equal(x, b.sample())


def test_state_from_a_seeded_sampler_is_refused():
    old = {"generator": torch.Generator().get_state(), "steps_done": 3, "pool": None, "perm": None}
    with pytest.raises(InputError, match="new run"):
        PoissonSampler(300, 0.1).load_state_dict(old)
