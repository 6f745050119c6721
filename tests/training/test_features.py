"""The feature encoder is built from public declarations, never from the data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privacy.errors import InputError
from training.features import FeatureEncoder

from .conftest import DECLARED, synthetic

VOCAB, RANGES = DECLARED["declared_vocabularies"], DECLARED["declared_ranges"]


def _declared(df: pd.DataFrame, **kw) -> FeatureEncoder:
    return FeatureEncoder.from_declarations(df, "y", vocabularies=kw.pop("vocabularies", VOCAB),
                                            ranges=kw.pop("ranges", RANGES), **kw)


def test_declared_encoder_holds_only_declarations_whatever_the_data():
    a, b = synthetic(500, seed=1), synthetic(500, seed=2)
    b["a"] = b["a"] * 3 + 1  # other statistics entirely
    b.loc[0, "c"] = "Atlantis"  # and one person with a value nobody declared
    ea, eb = _declared(a), _declared(b)
    assert ea.state() == eb.state()
    assert ea.vocabularies == {"c": ["x", "y", "z"], "sex": ["F", "M"]}  # declared order, nothing else
    assert ea.means == [0.0, 0.0] and ea.stds == [4.0, 4.0] and ea.clip == {"a": [-4.0, 4.0], "b": [-4.0, 4.0]}
    assert ea.source == "declared" and "Atlantis" not in repr(eb.state())


def test_values_outside_the_declarations_map_to_the_reserved_slot_and_are_clipped():
    df = pd.DataFrame({"a": [-100.0, 0.0, 2.0, 100.0], "b": [0.0] * 4, "c": ["x", "z", "Atlantis", None],
                       "sex": ["F", "M", "F", "M"], "y": ["no", "yes", "no", "yes"]})
    enc = _declared(df, categorical_encoding="embedding")
    num, cat, _ = enc.transform(df)
    np.testing.assert_allclose(num[:, 0], [-1.0, 0.0, 0.5, 1.0])  # clipped to [-4, 4], scaled by 4
    c = enc.categorical.index("c")
    assert cat[:, c].tolist() == [1, 3, 0, 0]  # x, z, undeclared -> 0, missing -> 0


def test_numbers_declared_as_a_value_set_match_their_stored_spelling():
    df = pd.DataFrame({"k": [0.0, 1.0, 1.0, np.nan], "y": [0, 1, 1, 0]})
    enc = FeatureEncoder.from_declarations(df, "y", categorical=["k"], vocabularies={"k": [0, 1]}, ranges={})
    assert enc.vocabularies == {"k": ["0", "1"]}
    assert enc.codes(df)[:, 0].tolist() == [1, 2, 2, 0]


@pytest.mark.parametrize("drop", ["c", "a"])
def test_undeclared_feature_is_refused_in_one_line_naming_it(drop):
    vocab = {k: v for k, v in VOCAB.items() if k != drop}
    ranges = {k: v for k, v in RANGES.items() if k != drop}
    with pytest.raises(InputError) as err:
        _declared(synthetic(50), vocabularies=vocab, ranges=ranges)
    msg = str(err.value)
    assert "\n" not in msg and f"feature {drop!r}" in msg and "quality suite" in msg
    assert ("value set" if drop == "c" else "range") in msg


def test_bad_declared_range_is_refused():
    with pytest.raises(InputError, match="finite interval"):
        _declared(synthetic(50), ranges={**RANGES, "a": [5.0, -5.0]})


def test_fit_on_data_is_labelled_and_state_round_trips():
    df = synthetic(300)
    fitted = FeatureEncoder.fit(df, "y")
    assert fitted.source == "fit_on_data" and "NOT covered" in fitted.to_dict()["statistics"]
    declared = _declared(df)
    again = FeatureEncoder.from_state(declared.state())
    assert again == declared
    for x, y in zip(declared.transform(df), again.transform(df)):
        np.testing.assert_array_equal(x, y)
    old = {k: v for k, v in fitted.state().items() if k not in ("clip", "source")}  # a bundle from before
    assert FeatureEncoder.from_state(old).source == "fit_on_data"
