"""Safe typing of CSV text: numbers become numbers, identifiers keep every character."""
from __future__ import annotations

import pandas as pd
import pytest

from governance.data.coerce import apply_types, infer_column
from governance.errors import InputError


def _col(values, name="c"):
    return pd.Series(values, dtype=object, name=name)


@pytest.mark.parametrize("values", [
    ["02134", "90210", "01002"],            # ZIP codes with leading zeros
    ["+16175550134", "+16175550135"],       # E.164 phone numbers
    ["123456", "654321", "111111"],         # fixed-width codes (6+ digits, all one width)
    ["12E4", "3E5"],                        # part numbers a spreadsheet would make floats
    ["1234567890123456", "1"],              # wider than a float64 holds exactly
    ["A123", "B456"],                       # mixed letters and digits
    ["1.5", "abc"],                         # not all numbers
])
def test_identifier_like_text_stays_text(values) -> None:
    out = infer_column(_col(values))
    assert out.tolist() == values


@pytest.mark.parametrize("values, kind, expected", [
    (["1", "22", "333"], "i", [1, 22, 333]),
    (["1.5", "-2", "0.25"], "f", [1.5, -2.0, 0.25]),
    (["1.0e-3", "2.5e2"], "f", [0.001, 250.0]),
    (["0", "-0.5", "10"], "f", [0.0, -0.5, 10.0]),
    (["90210", "10001", "10002"], "i", [90210, 10001, 10002]),  # 5 digits, no leading zero: a number is lossless
])
def test_plain_numbers_convert(values, kind, expected) -> None:
    out = infer_column(_col(values))
    assert out.dtype.kind == kind and out.tolist() == expected


def test_missing_values_make_floats_and_booleans_convert() -> None:
    out = infer_column(_col(["1", None, "3"]))
    assert out.dtype.kind == "f" and out.isna().tolist() == [False, True, False]
    assert infer_column(_col(["True", "False"])).tolist() == [True, False]
    assert infer_column(_col([None, None])).dtype.kind == "f"


def test_explicit_dtypes_override_and_name_the_line() -> None:
    df = pd.DataFrame({"zip": _col(["02134", "90210"]), "n": _col(["1", "zq9"]), "d": _col(["2024-01-02", None])})
    out = apply_types(df.drop(columns=["n"]), {"zip": "int", "d": "date"}, source="f.csv")
    assert out["zip"].tolist() == [2134, 90210] and str(out["d"].dtype).startswith("datetime64")
    with pytest.raises(InputError, match=r"f\.csv: option dtype n=int: 1 value\(s\) .* line 3") as info:
        apply_types(df, {"n": "int"}, source="f.csv")
    assert "zq9" not in str(info.value)  # the line, never the value
    with pytest.raises(InputError, match="option dtype names column"):
        apply_types(df, {"nope": "str"}, source="f.csv")
