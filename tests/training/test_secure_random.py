"""The per-run CSPRNG behind the Poisson masks and the DP noise (issue 11).

Statistical checks use fresh OS keys on purpose (that is the product); their
bounds are loose (p-values > 1e-6, or >= 6 standard errors), so a correct
generator fails them less than once in a million runs.
"""
from __future__ import annotations

import ast
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from privacy.errors import InputError
from training.secure_random import SecureRandom, chacha20_keystream, chacha20_words_torch

from .conftest import synthetic

ROOT = Path(__file__).resolve().parents[2]


def _words_bytes(words: torch.Tensor) -> bytes:
    return words.cpu().numpy().astype("<u4").tobytes()


# ---------------------------------------------------------------- keystream
def test_cryptography_keystream_is_rfc8439():
    """RFC 8439 sec. 2.3.2: key 00..1f, nonce 000000090000004a00000000, block counter 1."""
    expected = bytes.fromhex("10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
                             "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e")
    nonce = bytes.fromhex("000000090000004a00000000")
    assert chacha20_keystream(bytes(range(32)), nonce, 64, block_counter=1) == expected
    assert _words_bytes(chacha20_words_torch(bytes(range(32)), nonce, 1, block_counter=1)) == expected


@pytest.mark.parametrize("n_blocks,counter", [(1, 0), (7, 0), (300, 0), (5, 2**32 - 5)])
def test_torch_keystream_equals_cryptography_bit_for_bit(n_blocks, counter):
    key, nonce = os.urandom(32), os.urandom(12)
    ref = chacha20_keystream(key, nonce, 64 * n_blocks, block_counter=counter)
    assert _words_bytes(chacha20_words_torch(key, nonce, n_blocks, "cpu", block_counter=counter)) == ref


def test_torch_keystream_refuses_counter_overflow():
    with pytest.raises(InputError, match="2\\^32"):
        chacha20_words_torch(bytes(32), bytes(12), 6, block_counter=2**32 - 5)


@pytest.mark.parametrize("n_normal", [1, 1003, 3 * 8192 + 5])  # one value, one chunk, several chunks + tail
def test_both_backends_draw_the_same_numbers(n_normal):
    """CPU (cryptography, chunked numpy) and device (torch ops) paths read the same bits: identical masks,
    permutations and uniforms; Gaussians equal up to the last-ulp differences of numpy's and torch's log/sin/cos."""
    key = os.urandom(32)
    a, b = SecureRandom("cpu", key), SecureRandom("cpu", key, backend="torch")
    assert torch.equal(a.uniform(1001), b.uniform(1001))
    assert torch.equal(a.uniform(77, torch.float32), b.uniform(77, torch.float32))
    assert torch.equal(a.bernoulli_mask(999, 0.37), b.bernoulli_mask(999, 0.37))
    assert torch.equal(a.randperm(513), b.randperm(513))
    za, zb = a.normal(n_normal, 2.5), b.normal(n_normal, 2.5)
    assert za.shape == zb.shape == (n_normal,) and torch.allclose(za, zb, rtol=1e-6, atol=1e-6)
    assert a.counter == b.counter == 5


def test_device_path_that_needs_several_rounds_reads_the_same_stream(monkeypatch):
    """The device path over-draws polar pairs once; if a draw ever falls short it continues the same stream."""
    import training.secure_random as sr

    monkeypatch.setattr(sr, "_POLAR_MARGIN_SD", -40.0)  # force rounds that fall short
    key = os.urandom(32)
    a, b = SecureRandom("cpu", key), SecureRandom("cpu", key, backend="torch")
    assert torch.allclose(a.normal(20_000), b.normal(20_000), rtol=1e-6, atol=1e-6)



@pytest.mark.parametrize("n", [1, 5, 4_099, 9_001])
def test_device_noise_does_not_depend_on_the_round_size(monkeypatch, n):
    """Bounded rounds (memory) walk the same blocks in the same order: bit for bit the one-round result,
    including the normals carried over a round boundary."""
    import training.secure_random as sr

    key = os.urandom(32)
    one = SecureRandom("cpu", key, backend="torch")
    one.normal(3)
    whole = one.normal(n, 1.5)
    monkeypatch.setattr(sr, "_DEVICE_CHUNK_BLOCKS", 16)  # 64 polar pairs a round: many rounds, many carries
    small = SecureRandom("cpu", key, backend="torch")
    small.normal(3)
    assert torch.equal(small.normal(n, 1.5), whole) and small.counter == one.counter == 2
    out = torch.empty(n)
    small.normal(n, out=out)
    assert torch.equal(out, one.normal(n))


# ----------------------------------------------------------------- numbers
def test_uniforms_in_range_and_uniform():
    r = SecureRandom()
    for dtype in (torch.float64, torch.float32):
        u = r.uniform(200_000, dtype)
        assert u.dtype == dtype and u.min() >= 0.0 and u.max() < 1.0
        assert stats.kstest(u.double().numpy(), "uniform").pvalue > 1e-6
    u = r.uniform(200_000).numpy()
    assert np.unique(u).size > 199_990  # 53-bit values: essentially no repeats


def test_normals_have_the_requested_scale_and_shape():
    r = SecureRandom()
    n, std = 400_000, 3.0
    z = r.normal(n, std)
    assert z.dtype == torch.float32 and z.shape == (n,) and torch.isfinite(z).all()
    se = std / n ** 0.5
    assert abs(z.mean().item()) < 6 * se
    assert abs(z.std().item() - std) < 6 * std / (2 * n) ** 0.5
    assert stats.kstest(z.double().numpy() / std, "norm").pvalue > 1e-6
    assert abs(stats.kurtosis(z.double().numpy())) < 6 * (24 / n) ** 0.5  # Gaussian tails, not just variance
    out = torch.empty(1000)
    assert r.normal(1000, 1.0, out=out) is out
    with pytest.raises(InputError, match="out"):
        r.normal(10, out=torch.empty(9))


def test_bernoulli_mask_rate_and_edges():
    r = SecureRandom()
    n, q = 1_000_000, 0.013
    m = r.bernoulli_mask(n, q)
    assert m.dtype == torch.bool
    assert abs(m.float().mean().item() - q) < 6 * (q * (1 - q) / n) ** 0.5
    assert not r.bernoulli_mask(1000, 0.0).any() and r.bernoulli_mask(1000, 1.0).all()
    with pytest.raises(InputError):
        r.bernoulli_mask(10, 1.5)


def test_randperm_is_a_uniform_permutation():
    r = SecureRandom()
    assert sorted(r.randperm(1000).tolist()) == list(range(1000))
    assert r.randperm(0).numel() == 0
    first = np.array([r.randperm(5)[0].item() for _ in range(3000)])
    assert stats.chisquare(np.bincount(first, minlength=5)).pvalue > 1e-6


# ------------------------------------------------------------- key + state
def test_fresh_keys_give_different_streams():
    a, b = SecureRandom(), SecureRandom()
    assert a.state_dict()["key"].tolist() != b.state_dict()["key"].tolist()
    assert not torch.equal(a.uniform(64), b.uniform(64))


def test_same_key_and_counter_continue_the_exact_stream():
    a = SecureRandom()
    a.normal(100), a.bernoulli_mask(50, 0.2), a.randperm(30)
    state = a.state_dict()
    expected = [a.normal(257, 1.7), a.bernoulli_mask(999, 0.1), a.randperm(40), a.uniform(9)]
    b = SecureRandom()  # its own fresh key is replaced by the saved one
    buf = io.BytesIO()
    torch.save(state, buf)  # what the checkpoint does; loadable weights-only
    b.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    got = [b.normal(257, 1.7), b.bernoulli_mask(999, 0.1), b.randperm(40), b.uniform(9)]
    for x, y in zip(expected, got):
        assert torch.equal(x, y)
    c = SecureRandom(key=bytes(state["key"].tolist()))  # same key, counter 0: a different part of the stream
    assert not torch.equal(c.normal(257, 1.7), expected[0])


def test_prefetched_noise_is_exactly_the_unprefetched_stream():
    key = os.urandom(32)
    plain, ahead = SecureRandom(key=key), SecureRandom(key=key, prefetch=True)
    for n in (5000, 5000, 5000, 700, 700):  # a size change discards the guess and recomputes
        assert torch.equal(plain.normal(n, 1.5), ahead.normal(n, 1.5))
    assert torch.equal(plain.bernoulli_mask(100, 0.5), ahead.bernoulli_mask(100, 0.5))  # other draw kinds
    assert torch.equal(plain.normal(700), ahead.normal(700))  # the stale guess for this counter was dropped
    state = ahead.state_dict()
    assert state["counter"] == plain.counter == 7  # consumed draws only, not the one computed ahead
    expected = ahead.normal(700)
    resumed = SecureRandom(prefetch=True)
    resumed.normal(700)  # its own key and a pending guess, both replaced
    resumed.load_state_dict(state)
    assert torch.equal(resumed.normal(700), expected)


def test_each_draw_has_its_own_nonce():
    """Draw c uses nonce 0^32 || c: consecutive draws never reuse keystream."""
    key = os.urandom(32)
    r = SecureRandom(key=key, backend="torch")
    first, second = r.uniform(8), r.uniform(8)
    assert not torch.equal(first, second)
    ks = np.frombuffer(chacha20_keystream(key, bytes(4) + (1).to_bytes(8, "little"), 64), "<u8")
    assert torch.equal(second, torch.from_numpy((ks >> np.uint64(11)).astype(np.float64)) * 2.0 ** -53)


def test_bad_keys_and_foreign_state_are_refused():
    with pytest.raises(InputError, match="key"):
        SecureRandom(key=b"short")
    with pytest.raises(InputError, match="new run"):
        SecureRandom().load_state_dict({"generator": torch.Generator().get_state()})
    assert "key" not in repr(SecureRandom()).lower()


# ---------------------------------------------- where the key may and may not go
def test_run_keys_are_only_in_the_checkpoint(tmp_path):
    from training.model_bundle import bundle_bytes
    from training.trainer import checkpoint_bytes, finish_run, plan, start_run, TrainConfig

    df = synthetic(600)
    cfg = TrainConfig(target="y", encoder="fit_on_data", epochs=1, batch_size=100, epsilon=3.0, device="cpu", seed=3, hidden=[8],
                      sensitive_columns=["sex"])
    run = start_run(df.iloc[:500], cfg, plan(500, cfg))
    keys = [bytes(run.sampler.rng.state_dict()["key"].tolist()), bytes(run.noise_rng.state_dict()["key"].tolist())]
    assert keys[0] != keys[1]
    run.run()
    ck = checkpoint_bytes(run)
    assert all(k in ck for k in keys)  # positive control: the byte search finds a stored key
    res = finish_run(run, df.iloc[500:], cfg)
    published = [json.dumps(res.model_card, default=str).encode(), bundle_bytes(res, cfg), res.model_bytes,
                 json.dumps({"history": res.history, "metrics": res.metrics, "per_group": res.per_group},
                            default=str).encode()]
    for blob in published:
        for k in keys:
            assert k not in blob and k.hex().encode() not in blob
            assert json.dumps(list(k)).encode()[1:-1] not in blob


# -------------------------------------------------- the insecure fixture stays a fixture
def test_seeded_generator_is_predictable_which_is_why_it_is_test_only():
    from training.insecure_random import SeededRandom, start_seeded_run
    from training.trainer import finish_run, load_model, plan, TrainConfig

    a, b = SeededRandom(seed=5), SeededRandom(seed=5)
    assert torch.equal(a.normal(100), b.normal(100))  # anyone who knows the seed knows the noise
    df = synthetic(400)
    cfg = TrainConfig(target="y", encoder="fit_on_data", epochs=1, batch_size=100, epsilon=3.0, device="cpu", seed=3, hidden=[8])
    p = plan(len(df), cfg)
    results = []
    for _ in range(2):
        run = start_seeded_run(df, cfg, p)
        run.run()
        results.append(finish_run(run, None, cfg))
    assert "INSECURE" in results[0].model_card["training"]["randomness"]
    for x, y in zip(load_model(results[0], cfg).parameters(), load_model(results[1], cfg).parameters()):
        assert torch.equal(x, y)  # the whole run, noise included, follows from the published seed


def _imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_only_tests_and_benchmarks_import_the_insecure_generator():
    bad = []
    for package in ("governance", "privacy", "policies", "training"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "insecure_random.py":
                continue
            if any("insecure_random" in name for name in _imports_of(path)):
                bad.append(str(path.relative_to(ROOT)))
    assert not bad, f"the seeded generator is for tests only, imported by {bad}"
