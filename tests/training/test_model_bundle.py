"""A stored model is self-contained and loads without unpickling."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.errors import InputError
from training.features import FeatureEncoder
from training.model_bundle import MODEL_FORMAT, bundle_bytes, load_bundle, predict_proba
from training.trainer import TrainConfig, plan, predict_proba as trainer_predict, start_run, finish_run

from .conftest import DECLARED, synthetic


@pytest.fixture(scope="module")
def trained():
    df = synthetic(1500, seed=4)
    train, test = df.iloc[:1200].reset_index(drop=True), df.iloc[1200:].reset_index(drop=True)
    cfg = TrainConfig(target="y", epochs=2, batch_size=200, lr=0.02, epsilon=3.0, device="cpu", seed=1,
                      hidden=[16], **DECLARED)
    run = start_run(train, cfg, plan(len(train), cfg))
    run.run()
    result = finish_run(run, test, cfg)
    return run, result, cfg, test


def test_bundle_round_trip_predicts_identically(trained) -> None:
    run, result, cfg, test = trained
    bundle = load_bundle(bundle_bytes(result, cfg))
    expected = trainer_predict(run.model, run.encoder, test, run.device)
    got = predict_proba(bundle, test.drop(columns=["y"]))  # labels are not needed to predict
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert bundle.config == cfg and bundle.encoder == result.encoder
    assert np.isclose(((got > 0.5) == (test["y"] == "yes")).mean(), result.metrics["accuracy"])


def test_bundle_loads_with_weights_only(trained) -> None:
    _, result, cfg, _ = trained
    payload = torch.load(io.BytesIO(bundle_bytes(result, cfg)), weights_only=True)
    assert payload["format"] == MODEL_FORMAT and isinstance(payload["encoder"], dict)


def test_missing_feature_column_is_named(trained) -> None:
    _, result, cfg, test = trained
    bundle = load_bundle(bundle_bytes(result, cfg))
    with pytest.raises(InputError, match=r"missing feature column\(s\) \['b'\]"):
        predict_proba(bundle, test.drop(columns=["b"]))


def test_pickled_object_is_refused() -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    torch.save({"format": MODEL_FORMAT, "x": Evil()}, buf, pickle_module=pickle)
    with pytest.raises(InputError, match="not a privgov model bundle"):
        load_bundle(buf.getvalue())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_a_clear_error(data: bytes) -> None:
    with pytest.raises(InputError, match="not a privgov model bundle"):
        load_bundle(data, source="model of run x")


def test_encoder_state_round_trip_and_validation() -> None:
    df = synthetic(300)
    enc = FeatureEncoder.fit(df, "y")
    again = FeatureEncoder.from_state(enc.state())
    for a, b in zip(enc.transform(df), again.transform(df)):
        np.testing.assert_array_equal(a, b)
    bad = enc.state()
    bad["means"] = bad["means"][:-1]
    with pytest.raises(InputError, match="means/stds"):
        FeatureEncoder.from_state(bad)
    with pytest.raises(InputError, match="unexpected fields"):
        FeatureEncoder.from_state({**enc.state(), "surprise": 1})


@pytest.mark.parametrize("encoder", ["declared", "fit_on_data"])
def test_no_undeclared_category_in_the_bundle_or_card(encoder) -> None:
    """One person with a value nobody declared: the declared encoder never names it."""
    import json

    df = synthetic(600, seed=8)
    df.loc[5, "c"] = "Atlantis-Probe"
    cfg = TrainConfig(target="y", epochs=1, batch_size=200, lr=0.02, epsilon=3.0, device="cpu", seed=1,
                      hidden=[8], sensitive_columns=["c"], encoder=encoder, **DECLARED)
    run = start_run(df, cfg, plan(len(df), cfg))
    run.run()
    result = finish_run(run, df, cfg)
    blob = bundle_bytes(result, cfg)
    card = json.dumps(result.model_card) + json.dumps(result.per_group)
    if encoder == "declared":
        assert b"Atlantis-Probe" not in blob and "Atlantis-Probe" not in card
        assert "(undeclared values)" in result.per_group["c"]["groups"]
        assert "nothing in the encoder was computed" in result.model_card["privacy"]["feature_statistics"]
    else:  # the escape hatch: the value ships, and the card says the statistics are not covered
        assert b"Atlantis-Probe" in blob
        assert "NOT covered by epsilon" in result.model_card["privacy"]["feature_statistics"]
