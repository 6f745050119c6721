"""Public declarations from a quality suite, carried through de-identification steps."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from governance.data import declarations as dc
from tests.conftest import REPO


def _suite(*exps: dict) -> dict:
    return {"name": "s", "expectations": list(exps)}


def _e(etype: str, **kw) -> dict:
    return {"type": etype, "kwargs": kw}


def test_value_sets_ranges_and_row_bound_from_a_suite():
    d = dc.from_suite(_suite(
        _e(dc.IN_SET, column="c", value_set=["b", "a", None, "b"]),
        _e(dc.IN_SET, column="c", value_set=["a", "b", "z"]),           # both hold: intersect, first order
        _e(dc.BETWEEN, column="x", min_value=0, max_value=10),
        _e(dc.BETWEEN, column="x", min_value=2, max_value=20, mostly=0.9),  # narrows
        _e(dc.BETWEEN, column="half", min_value=0),                      # one-sided: no declaration
        _e(dc.IN_SET, column="cond", value_set=["q"], row_condition='a=="b"'),  # conditional: none
        _e(dc.ROWS_BETWEEN, min_value=1, max_value=5000),
    ))
    assert d.vocabularies == {"c": ["b", "a"]}
    assert d.ranges == {"x": (2.0, 10.0)}
    assert d.max_rows == 5000


def test_age_band_labels_are_exactly_the_ones_deid_produces():
    from privacy.deid import apply_deid

    step = {"column": "age", "action": "generalize", "method": "age_band", "width": 20, "top": 80}
    d = dc.after_deid(dc.Declarations(ranges={"age": (0.0, 120.0)}), [step])
    assert d.vocabularies["age"] == ["0-19", "20-39", "40-59", "60-79", "80+"] and "age" not in d.ranges
    ages = pd.DataFrame({"age": np.random.default_rng(0).uniform(0, 120, 5000)})
    out, _ = apply_deid(ages, [step], key_for_domain=lambda _: b"k" * 32)
    assert set(out["age"].dropna()) <= set(d.vocabularies["age"])


def test_drop_and_pseudonymize_remove_declarations_zip_and_round_are_derived():
    decl = dc.Declarations(vocabularies={"email": ["a@b.c"], "sex": ["f", "m"], "kind": ["p", "q"]},
                           ranges={"name_len": (0.0, 9.0), "bmi": (10.2, 79.6)}, max_rows=10)
    steps = [{"column": "email", "action": "pseudonymize"}, {"column": "name_len", "action": "drop"},
             {"column": "zip", "action": "generalize", "method": "zip_prefix", "digits": 2},
             {"column": "bmi", "action": "generalize", "method": "round", "ndigits": 0},
             {"column": "kind", "action": "suppress_rare", "k": 5},
             {"column": "dob", "action": "generalize", "method": "date_truncate", "to": "year"}]
    d = dc.after_deid(decl, steps)
    assert "email" not in d.vocabularies and "name_len" not in d.ranges and "dob" not in d.vocabularies
    assert d.vocabularies["zip"] == [f"{i:02d}***" for i in range(100)]  # every 2-digit area: public
    assert d.ranges["bmi"] == (10.0, 80.0) and d.vocabularies["sex"] == ["f", "m"]
    assert d.vocabularies["kind"] == ["p", "q", "other"] and d.max_rows == 10


def test_the_clinic_example_declares_every_training_feature():
    import yaml

    spec = yaml.safe_load((REPO / "examples" / "clinic" / "pipeline.yaml").read_text())
    d = dc.for_pipeline(REPO / "examples" / "clinic" / "suite.json", spec["deid"]["steps"])
    t = spec["training"]
    for f in t["features"]:
        assert f in (d.vocabularies if f in t["categorical"] else d.ranges), f
    assert d.vocabularies["age"][-1] == "80+"


def test_the_adult_suite_declares_adult_names_value_sets():
    d = dc.for_pipeline(REPO / "examples" / "adult" / "suite.json", [{"column": "fnlwgt", "action": "drop"}])
    assert "Holand-Netherlands" in d.vocabularies["native_country"] and len(d.vocabularies["native_country"]) == 41
    assert d.max_rows == 48842
    for c in ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week"):
        assert c in d.ranges


@pytest.mark.parametrize("steps, covers", [
    ([{"stage": "deid", "step": 0, "column": "zip", "action": "generalize"}], "raw data"),
    ([{"stage": "deid", "step": 1, "column": "zip", "action": "suppress_rare"}],
     "stored version (count-based suppression ran)"),
    ([{"stage": "deid", "step": "suppress_below_k", "column": "age,sex", "action": "suppress_rows"}],
     "stored version (count-based suppression ran)"),
    ([{"index": 0, "step": "impute", "params": {"columns": ["x"], "strategy": "median"}}],
     "stored version (data-dependent cleaning ran: impute)"),
    ([{"index": 0, "step": "impute", "params": {"columns": ["x"], "strategy": "constant", "value": 0}},
      {"index": 1, "step": "trim_whitespace", "params": {}}], "raw data"),
])
def test_epsilon_covers_names_data_dependent_steps(steps, covers):
    assert dc.epsilon_covers(steps) == covers
