"""Spark and pandas agree on the clinic example: the same failing row ids, expectation by expectation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.data.quality import load_suite, validate
from governance.data.spark.validate import validate_spark

CLINIC = Path(__file__).resolve().parents[4] / "governance" / "demo" / "examples" / "clinic"


@pytest.fixture(scope="module")
def clinic() -> pd.DataFrame:
    from governance.demo.sample_data import generate_clinic

    df = generate_clinic(1500, seed=7)
    df.insert(0, "row_id", np.arange(len(df), dtype=np.int64))
    return df


@pytest.fixture(scope="module")
def suite() -> dict:
    return load_suite(CLINIC / "suite.json")


def test_validation_row_ids_match_pandas(spark, clinic, suite) -> None:
    expected = validate(clinic, suite, engine="fast")
    got = validate_spark(spark.createDataFrame(clinic), suite)
    assert [r.type for r in got.results] == [r.type for r in expected.results]
    for e, g in zip(expected.results, got.results):
        assert (g.status, g.unexpected_count, g.failing_row_ids) == (e.status, e.unexpected_count,
                                                                     e.failing_row_ids), e.type
    assert got.failing_row_ids == expected.failing_row_ids and expected.failing_row_ids  # the sample is dirty
    # never values: no name, email or out-of-set value from a failing row reaches the result
    text = got.to_json()
    for rid in expected.failing_row_ids[:50]:
        row = clinic.loc[clinic["row_id"] == rid].iloc[0]
        for col in ("name", "email", "sex", "race"):
            v = row[col]
            if isinstance(v, str) and len(v.strip()) > 3:
                assert json.dumps(v)[1:-1] not in text, (col, rid)
