"""privacy.deid.transforms: HMAC pseudonyms, generalization, suppression, spec validation, reports."""
from __future__ import annotations

import hashlib
import hmac
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.demo.sample_data import generate_clinic
from privacy.deid.transforms import (apply_deid, generalize, parse_specs, pseudonymize, suppress_rare,
                                     transformed_columns)
from privacy.errors import InputError

KEY_A = b"A" * 32
KEY_B = b"B" * 32


def keys(domain: str) -> bytes:
    return hashlib.sha256(b"test-master\x00" + domain.encode()).digest()


def test_pseudonyms_stable_keyed_and_domain_separated():
    s = pd.Series(["alice@example.org", "bob@example.org", None, "alice@example.org"])
    a1 = pseudonymize(s, KEY_A, domain="email")
    a2 = pseudonymize(s.copy(), KEY_A, domain="email")
    assert a1.tolist() == a2.tolist()                          # stable with the same key
    assert a1[0] == a1[3] and a1[0] != a1[1]                   # deterministic, injective here
    assert pd.isna(a1[2])                                      # nulls stay null
    assert all(len(v) == 16 and int(v, 16) >= 0 for v in a1.dropna())
    assert not set(a1.dropna()) & set(s.dropna())              # never the input
    b = pseudonymize(s, KEY_B, domain="email")
    assert (a1.dropna() != b.dropna()).all()                   # another key
    c = pseudonymize(s, KEY_A, domain="contact")
    assert (a1.dropna() != c.dropna()).all()                   # another domain, same key
    # known answer: the construction is part of the contract (joins across versions)
    expected = hmac.new(KEY_A, b"email\x00alice@example.org", hashlib.sha256).hexdigest()[:16]
    assert a1[0] == expected
    assert len(pseudonymize(s, KEY_A, domain="email", length=32)[0]) == 32


def test_pseudonyms_join_across_versions_and_types():
    v1 = pd.DataFrame({"patient_id": [10, 11, 12]})
    v2 = pd.DataFrame({"patient_id": [12.0, 10.0, np.nan]})   # read back with NaN -> float
    p1 = pseudonymize(v1["patient_id"], KEY_A, domain="patient")
    p2 = pseudonymize(v2["patient_id"], KEY_A, domain="patient")
    assert p2[0] == p1[2] and p2[1] == p1[0] and pd.isna(p2[2])
    lower = pseudonymize(pd.Series([" Alice@Example.org "]), KEY_A, domain="e", normalize="strip_lower")
    assert lower[0] == pseudonymize(pd.Series(["alice@example.org"]), KEY_A, domain="e")[0]


def test_pseudonymize_rejects_weak_keys():
    with pytest.raises(InputError, match="16 bytes"):
        pseudonymize(pd.Series(["x"]), b"short", domain="d")


def test_age_band():
    s = pd.Series([0, 9, 10, 37, 89, 95, -3, 240, None], name="age", dtype=object)
    out = generalize(s, "age_band", width=10, top=90)
    assert out.tolist()[:6] == ["0-9", "0-9", "10-19", "30-39", "80-89", "90+"]
    assert out[6:].isna().all()                                # impossible ages become null
    assert generalize(pd.Series([37]), "age_band", width=5)[0] == "35-39"


def test_zip_prefix():
    s = pd.Series(["02139", "10001-1234", " 94105", "03601", "abc", None])
    out = generalize(s, "zip_prefix", digits=3)
    assert out.tolist()[:4] == ["021**", "100**", "941**", "036**"]
    assert out[4:].isna().all()
    hip = generalize(s, "zip_prefix", digits=3, hipaa_restricted=True)
    assert hip[3] == "000**" and hip[0] == "021**"
    assert generalize(pd.Series([2139, 10001]), "zip_prefix", digits=2, pad=False).tolist() == ["02", "10"]


def test_date_truncate():
    d = pd.Series(pd.to_datetime(["1985-03-12", "2001-12-31", None]))
    assert generalize(d, "date_truncate", to="year").tolist()[:2] == ["1985", "2001"]
    assert generalize(d, "date_truncate", to="month").tolist()[:2] == ["1985-03", "2001-12"]
    s = pd.Series(["1985-03-12", "03/04/1990", "garbage", None])
    out = generalize(s, "date_truncate", to="year")
    assert out.tolist()[:2] == ["1985", "1990"] and out[2:].isna().all()


def test_round():
    s = pd.Series([27.34, 31.86, None])
    assert generalize(s, "round", ndigits=0).tolist()[:2] == [27.0, 32.0]
    assert generalize(s, "round", base=5).tolist()[:2] == [25.0, 30.0]
    assert generalize(pd.Series([123, 167]), "round", base=50).tolist() == [100, 150]
    with pytest.raises(InputError, match="base"):
        generalize(s, "round", ndigits=1, base=5)


def test_suppress_rare():
    s = pd.Series(["a"] * 5 + ["b"] * 2 + ["c"] + [None])
    out, n = suppress_rare(s, k=3)
    assert n == 2
    assert out.tolist()[:8] == ["a"] * 5 + ["other"] * 3 and pd.isna(out[8])


def test_apply_deid_end_to_end_and_reports_never_contain_values():
    df = generate_clinic(6000, seed=21)
    specs = [
        {"column": "ssn", "action": "drop"},
        {"column": "name", "action": "drop"},
        {"column": "phone", "action": "pseudonymize", "domain": "phone"},
        {"column": "email", "action": "pseudonymize", "domain": "email", "normalize": "strip_lower"},
        {"column": "patient_id", "action": "pseudonymize", "domain": "patient"},
        {"column": "age", "action": "generalize", "method": "age_band", "width": 10, "top": 90},
        {"column": "zip", "action": "generalize", "method": "zip_prefix", "digits": 3},
        {"column": "date_of_birth", "action": "generalize", "method": "date_truncate", "to": "year"},
        {"column": "bmi", "action": "generalize", "method": "round", "ndigits": 0},
        {"column": "diagnosis_code", "action": "suppress_rare", "k": 50},
        {"column": "sex", "action": "keep"},
    ]
    out, report = apply_deid(df, specs, keys)
    assert "ssn" not in out.columns and "name" not in out.columns
    assert len(out) == len(df) and "ssn" in df.columns          # input untouched
    assert [r["step"] for r in report] == list(range(len(specs)))
    assert {r["action"] for r in report} == {"drop", "pseudonymize", "generalize", "suppress_rare", "keep"}
    by_col = {r["column"]: r for r in report}
    assert by_col["email"]["nulls"] == int(df["email"].isna().sum())
    assert by_col["age"]["became_null"] == int((~df["age"].between(0, 120)).sum())
    assert by_col["diagnosis_code"]["categories_suppressed"] > 0
    assert transformed_columns(report) == {"phone", "email", "patient_id", "age", "zip", "date_of_birth", "bmi"}
    # same key -> same pseudonyms in the next "version": joins still work
    out2, _ = apply_deid(df.iloc[::-1], specs, keys)
    assert set(out2["patient_id"]) == set(out["patient_id"])
    assert out["patient_id"].nunique() == df["patient_id"].nunique()
    # reports never contain a data value
    blob = json.dumps(report)
    leaves = {str(v) for r in report for v in r.values()}
    for col in ("ssn", "name", "phone", "email", "zip", "diagnosis_code"):
        raw = df[col].dropna().astype(str)
        assert not leaves & set(raw), col
        assert not any(v in blob for v in raw if len(v.strip()) >= 6), col
    assert not any(v in blob for v in out["patient_id"].head(100))


def test_spec_validation_names_index_and_key():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    cases = [
        ([{"column": "a", "action": "drop", "colour": "red"}], r"spec #0: key 'colour'"),
        ([{"column": "a", "action": "keep"}, {"column": "b", "action": "pseudonymise"}], r"spec #1: key 'action'"),
        ([{"column": "a", "action": "generalize", "method": "age_band", "widht": 5}], r"spec #0: key 'widht'"),
        ([{"column": "a", "action": "generalize", "method": "blur"}], r"spec #0: key 'method'"),
        ([{"column": "a", "action": "generalize", "method": "age_band", "width": 0}], r"spec #0: key 'width'"),
        ([{"column": "a"}], r"spec #0: missing key 'action'"),
        ([{"action": "drop"}], r"spec #0: key 'column'"),
        ([{"column": "a", "action": "pseudonymize", "length": 4}], r"spec #0: key 'length'"),
        (["drop a"], r"spec #0: expected a mapping"),
        ({"column": "a"}, r"expected a list"),
    ]
    for specs, pattern in cases:
        with pytest.raises(InputError, match=pattern):
            apply_deid(df, specs, keys)
    with pytest.raises(InputError, match=r"spec #1: column 'zzz' is not in the data"):
        apply_deid(df, [{"column": "a", "action": "keep"}, {"column": "zzz", "action": "drop"}], keys)
    with pytest.raises(InputError, match=r"dropped by an earlier step"):
        apply_deid(df, [{"column": "a", "action": "drop"}, {"column": "a", "action": "keep"}], keys)
    assert len(parse_specs([{"column": "a", "action": "drop"}])) == 1


def test_key_callback_failures_are_input_errors():
    df = pd.DataFrame({"a": ["x"]})

    def boom(domain):
        raise KeyError(domain)

    with pytest.raises(InputError, match="no pseudonym key for domain 'a'"):
        apply_deid(df, [{"column": "a", "action": "pseudonymize"}], boom)
    with pytest.raises(InputError, match="at least 16 bytes"):
        apply_deid(df, [{"column": "a", "action": "pseudonymize"}], lambda d: b"k")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=200), st.binary(max_size=80), st.binary(max_size=300))
def test_fast_hmac_equals_the_standard_library(key, prefix, message) -> None:
    """The precomputed-state HMAC behind pseudonyms gives hmac.digest's bytes (keys longer than a block too)."""
    from privacy.deid.transforms import hmac_sha256

    mac = hmac_sha256(key, prefix)
    assert mac(message) == hmac.digest(key, prefix + message, "sha256")
    assert mac(message) == mac(message)  # the precomputed states are copied, never consumed


@given(st.lists(st.one_of(st.integers(-2**63, 2**63 - 1), st.none()), max_size=40), st.integers(8, 64))
@settings(max_examples=100, deadline=None)
def test_integer_pseudonyms_hash_the_decimal_text(values, length) -> None:
    """Integer ids (vectorised text) and odd/even lengths give HMAC(domain NUL str(int)) as documented."""
    key = b"k" * 32
    s = pd.Series(values, dtype="Int64" if None in values else "int64")
    got = pseudonymize(s.astype("int64") if None not in values else s, key, domain="patient", length=length)
    for v, p in zip(values, got.tolist()):
        if v is None:
            assert p is None or pd.isna(p)
        else:
            assert p == hmac.new(key, b"patient\x00" + str(v).encode(), hashlib.sha256).hexdigest()[:length]
