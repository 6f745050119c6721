import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.errors import InputError
from training.trainer import (TrainConfig, count_units, finish_run, load_model, plan, resume, save_checkpoint,
                              start_run, train_private, train_unsafe_shuffled)

from .conftest import DECLARED, synthetic


def _cfg(**kw):
    base = dict(target="y", epochs=4, batch_size=200, lr=0.02, epsilon=3.0, delta=1e-5, max_grad_norm=1.0,
                device="cpu", seed=3, sensitive_columns=["sex"], hidden=[32], **DECLARED)
    base.update(kw)
    return TrainConfig(**base)


def test_plan_calibrates_to_target_from_metadata_only():
    cfg = _cfg(epsilon=1.0, epochs=10, batch_size=500)
    p = plan(20000, cfg)
    assert p.sample_rate == pytest.approx(500 / 20000)
    assert p.steps == 400
    assert 0.9 < p.epsilon <= 1.0 + 1e-9
    assert len(p.rdp) == len(p.orders) and p.sigma > 0.5


def test_group_bounding_converts_to_unit_level():
    cfg = _cfg(epsilon=2.0, bounding="group", unit_column="patient")
    p = plan(5000, cfg, max_group_size=3)
    assert p.group_size == 3 and p.epsilon <= 2.0 + 1e-6
    assert p.record_epsilon <= 2.0 / 3 + 1e-6


def test_end_to_end_cpu_training_learns():
    df = synthetic(3000)
    train, test = df.iloc[:2400], df.iloc[2400:]
    cfg = _cfg()
    p = plan(len(train), cfg)
    res = train_private(train, test, cfg, p)
    majority = max((test.y == "yes").mean(), (test.y == "no").mean())
    assert res.metrics["accuracy"] > majority + 0.1, (res.metrics["accuracy"], majority)
    assert res.epsilon_spent == pytest.approx(p.epsilon) and res.epsilon_spent <= cfg.epsilon + 1e-9
    assert res.steps == p.steps and res.history
    assert all(set(h) == {"epoch", "step"} for h in res.history)  # no training loss, no rows seen
    card = res.model_card
    assert card["privacy"]["epsilon"] == res.epsilon_spent and card["privacy"]["poisson_accounted"]
    assert "early stopping" in card["model_selection"]
    assert "sex" in res.per_group and "equalized_odds_difference" in res.per_group["sex"]
    model = load_model(res, cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_unit_bounding_plan_uses_units():
    df = synthetic(1200, units=300)
    cfg = _cfg(unit_column="patient", epochs=2)
    n_units, max_group = count_units(df, cfg)
    assert n_units == df.patient.nunique() and max_group > 1
    p = plan(n_units, cfg)
    res = train_private(df, None, cfg, p)
    assert res.model_card["privacy"]["privacy_unit"] == "patient"


def test_declared_units_set_the_sample_rate_whatever_the_data_holds():
    """q = batch / max_units: the plan, sigma and card do not depend on how many units the data has."""
    cfg = _cfg(unit_column="patient", epochs=2, max_units=1000)
    small, large = synthetic(600, units=150), synthetic(1800, units=450)
    p_small = plan(count_units(small, cfg)[0], cfg)
    p_large = plan(count_units(large, cfg)[0], cfg)
    assert p_small == p_large and p_small.sample_rate == pytest.approx(200 / 1000)
    assert p_small.n_units == 1000 and p_small.expected_batch_size == pytest.approx(200)
    cards = [train_private(df, None, cfg, p_small).model_card for df in (small, large)]
    for card in cards:
        assert card["privacy"]["sample_rate"] == pytest.approx(200 / 1000)
        assert card["privacy"]["units_for_sample_rate"] == 1000
    assert {k: v for k, v in cards[0]["privacy"].items() if k != "epsilon"} == \
        {k: v for k, v in cards[1]["privacy"].items() if k != "epsilon"}
    assert cards[0]["training"] == cards[1]["training"]  # no empty-batch or rows-seen counts


def test_group_bounding_trains_on_at_most_the_declared_rows_per_unit():
    from training.trainer import bound_rows_per_unit

    df = synthetic(1200, units=100)
    cfg = _cfg(unit_column="patient", bounding="group", max_rows_per_unit=3, max_units=100, epochs=1)
    kept = bound_rows_per_unit(df, cfg)
    assert kept.groupby("patient").size().max() == 3 and len(kept) < len(df)
    assert (kept.groupby("patient").size() == df.groupby("patient").size().clip(upper=3)).all()
    p = plan(len(df), cfg, max_group_size=99)  # the declared bound wins over any count
    assert p.group_size == 3 and p.n_units == 300


def test_shuffle_unsafe_is_refused_by_every_accounted_entry_point(tmp_path):
    df = synthetic(400)
    unsafe = _cfg(sampler="shuffle_unsafe", epochs=1)
    with pytest.raises(InputError, match="not Poisson"):
        plan(len(df), unsafe)
    p = plan(len(df), _cfg(epochs=1))  # a Poisson plan cannot be reused for a shuffled run either
    for call in (lambda: start_run(df, unsafe, p), lambda: train_private(df, None, unsafe, p)):
        with pytest.raises(InputError, match="not Poisson"):
            call()
    run = start_run(df, _cfg(epochs=1), p)
    run.run(stop_after=1)
    save_checkpoint(run, tmp_path / "ck.pt")
    with pytest.raises(InputError, match="not Poisson"):
        resume(tmp_path / "ck.pt", df, unsafe, p)


def test_shuffle_unsafe_only_through_the_named_unaccounted_path():
    df = synthetic(800)
    cfg = _cfg(sampler="shuffle_unsafe", epochs=1)
    res = train_unsafe_shuffled(df, None, cfg)
    assert res.model_card["privacy"]["poisson_accounted"] is False
    assert "NOT" in res.model_card["privacy"]["warning"]
    with pytest.raises(InputError, match="shuffle_unsafe"):
        train_unsafe_shuffled(df, None, _cfg(epochs=1))


def _params(res, cfg):
    return torch.cat([p.detach().flatten() for p in load_model(res, cfg).parameters()])


def test_same_seed_runs_draw_different_noise_and_batches():
    """`seed:` is published in the card: it fixes the initial weights, never the masks or the noise."""
    df = synthetic(600)
    cfg = _cfg(epochs=1)
    p = plan(len(df), cfg)
    runs = [start_run(df, cfg, p) for _ in range(2)]
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        assert torch.equal(a, b)  # same seed: same initialisation
    batches = [[r.sampler.sample() for _ in range(4)] for r in runs]
    assert any(not torch.equal(x, y) for x, y in zip(*batches))
    noise = [r.stepper.clipper.draw_noise() for r in runs]
    assert not torch.allclose(noise[0], noise[1])
    a, b = (train_private(df, None, cfg, p) for _ in range(2))
    assert not torch.allclose(_params(a, cfg), _params(b, cfg))
    assert "os.urandom" in a.model_card["training"]["randomness"]


def test_empty_batches_are_noise_only_steps():
    df = synthetic(400)
    cfg = _cfg(batch_size=1, epochs=1, epsilon=8.0)  # q = 1/400: most batches are empty
    p = plan(len(df), cfg)
    run = start_run(df, cfg, p)
    run.run()
    res = finish_run(run, None, cfg)
    assert res.steps == p.steps == 400
    assert run.stepper.empty_steps > 100
    assert "empty_batches" not in res.model_card["training"]  # a count that follows the data's size


@pytest.mark.parametrize("clipping", ["bookkeeping", "per_sample"])
def test_resume_gives_same_epsilon_steps_and_parameters(tmp_path, clipping):
    """Resuming continues the exact masks and noise: the keys and counters travel in the checkpoint.

    The uninterrupted reference starts from a step-0 checkpoint of the same run, so both share the
    run's keys (a second `start_run` would draw fresh keys and, rightly, different noise)."""
    df = synthetic(1000)
    cfg = _cfg(epochs=3, clipping=clipping)
    p = plan(len(df), cfg)
    part = start_run(df, cfg, p)
    save_checkpoint(part, tmp_path / "ck0.pt")
    full = resume(tmp_path / "ck0.pt", df, cfg, p)
    full.run()
    a = finish_run(full, None, cfg)
    part.run(stop_after=p.steps // 2)
    save_checkpoint(part, tmp_path / "ck.pt")
    del part
    resumed = resume(tmp_path / "ck.pt", df, cfg, p)
    assert resumed.steps_done == p.steps // 2
    resumed.run()
    b = finish_run(resumed, None, cfg)
    assert a.steps == b.steps and a.epsilon_spent == b.epsilon_spent
    ma, mb = load_model(a, cfg), load_model(b, cfg)
    for (n, x), y in zip(ma.named_parameters(), mb.parameters()):
        assert torch.equal(x, y), n


def test_resume_refuses_other_plan(tmp_path):
    df = synthetic(600)
    cfg = _cfg(epochs=2)
    p = plan(len(df), cfg)
    run = start_run(df, cfg, p)
    run.run(stop_after=2)
    save_checkpoint(run, tmp_path / "ck.pt")
    cfg2 = _cfg(epochs=2, epsilon=1.0)
    with pytest.raises(InputError, match="plan"):
        resume(tmp_path / "ck.pt", df, cfg2, plan(len(df), cfg2))


def test_bad_config_values():
    with pytest.raises(InputError, match="sampler"):
        plan(100, _cfg(sampler="shuffle"))
    with pytest.raises(InputError, match="clipping"):
        plan(100, _cfg(clipping="none"))
    with pytest.raises(InputError, match="encoder"):
        plan(100, _cfg(encoder="fitted"))
    with pytest.raises(InputError, match="max_units"):
        plan(100, _cfg(max_units=0))
    with pytest.raises(InputError, match="min_group_size"):
        plan(100, _cfg(min_group_size=0))


_FOREIGN_DF = synthetic(300)
_FOREIGN_CFG = _cfg(epochs=1)


@functools.lru_cache(maxsize=1)
def _foreign_plan():
    return plan(len(_FOREIGN_DF), _FOREIGN_CFG)  # sigma calibration is the slow part: once


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=3000))
def test_resume_from_foreign_bytes_is_a_clear_error(raw):
    with pytest.raises(InputError, match="not a privgov training checkpoint"):
        resume(raw, _FOREIGN_DF, _FOREIGN_CFG, _foreign_plan())
