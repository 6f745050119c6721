"""privacy.deid.risk: k-anonymity, l-diversity, release gates (sizes only, never values)."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.deid.risk import enforce_no_direct_identifiers, k_anonymity, l_diversity, require_k
from privacy.deid.scan import ColumnFinding
from privacy.errors import AccessDenied, InputError


@pytest.fixture()
def df():
    return pd.DataFrame({
        "zip3": ["021", "021", "021", "100", "100", "941", "941", "941", "941", "606"],
        "band": ["30-39"] * 3 + ["40-49"] * 2 + ["50-59"] * 4 + ["60-69"],
        "diag": ["I10", "E11.9", "I10", "J45", "J45", "I10", "E78.5", "F32.9", "I10", "I10"],
        "email": ["x"] * 10,
    })


def test_k_anonymity(df):
    rep = k_anonymity(df, ["zip3", "band"])
    assert rep.k == 1 and rep.n_classes == 4 and rep.n_rows == 10
    assert rep.smallest_class_sizes == [1, 2, 3, 4]
    assert rep.share_of_rows_in_classes_below(3) == pytest.approx(0.3)
    assert rep.share_of_rows_in_classes_below(1) == 0.0
    assert rep.share_of_rows_in_classes_below(100) == 1.0
    assert k_anonymity(df, ["email"]).k == 10
    assert k_anonymity(df.iloc[:0], ["zip3"]).k == 0
    # nulls form their own class
    d = pd.DataFrame({"q": ["a", None, None]})
    assert k_anonymity(d, ["q"]).smallest_class_sizes == [1, 2]
    assert "021" not in repr(rep) and "30-39" not in repr(rep)   # sizes only


def test_l_diversity(df):
    assert l_diversity(df, ["zip3", "band"], "diag") == 1      # the 100/40-49 class has only J45
    assert l_diversity(df[df["zip3"] != "100"], ["zip3", "band"], "diag") == 1  # 606 singleton
    assert l_diversity(df[df["zip3"].isin(["021", "941"])], ["zip3"], "diag") == 2
    with pytest.raises(InputError, match="sensitive column 'nope'"):
        l_diversity(df, ["zip3"], "nope")
    with pytest.raises(InputError, match="also a quasi-identifier"):
        l_diversity(df, ["zip3"], "zip3")


def test_require_k_names_counts_and_sizes_not_values(df):
    with pytest.raises(InputError) as exc:
        require_k(df, ["zip3", "band"], 3)
    msg = str(exc.value)
    assert "2 equivalence class(es)" in msg and "sizes 1, 2" in msg and "k=3" in msg
    for value in ("021", "100", "606", "40-49", "60-69"):
        assert value not in msg
    assert require_k(df, ["email"], 5).k == 10
    with pytest.raises(InputError, match="'nope'"):
        require_k(df, ["nope"], 2)
    with pytest.raises(InputError, match="positive integer"):
        require_k(df, ["zip3"], 0)
    with pytest.raises(InputError, match="at least one"):
        k_anonymity(df, [])


def test_enforce_no_direct_identifiers(df):
    with pytest.raises(AccessDenied, match="'email' is still in clear"):
        enforce_no_direct_identifiers(df, ["email", "ssn"])
    enforce_no_direct_identifiers(df.drop(columns=["email"]), ["email"])              # dropped
    enforce_no_direct_identifiers(df, ["email"], {"email"})                           # pseudonymized
    report = [{"step": 0, "column": "email", "action": "pseudonymize"}]
    enforce_no_direct_identifiers(df, ["email"], report)
    with pytest.raises(AccessDenied, match="email"):
        enforce_no_direct_identifiers(df, ["email"], [{"step": 0, "column": "email", "action": "keep"}])
    findings = [ColumnFinding("email", "email", 1.0, 1.0, True), ColumnFinding("zip3", "zip", 1.0, 1.0, False)]
    with pytest.raises(AccessDenied) as exc:
        enforce_no_direct_identifiers(df, findings)
    assert "zip3" not in str(exc.value) and "'x'" not in str(exc.value)
    assert exc.value.exit_code == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=60), st.integers(1, 8))
def test_k_matches_value_counts(values, k_req):
    d = pd.DataFrame({"q": values})
    rep = k_anonymity(d, ["q"])
    counts = d["q"].value_counts(dropna=False)
    assert rep.k == counts.min() and rep.n_classes == len(counts)
    assert rep.share_of_rows_in_classes_below(k_req) == pytest.approx(counts[counts < k_req].sum() / len(d))
    if rep.k >= k_req:
        require_k(d, ["q"], k_req)
    else:
        with pytest.raises(InputError):
            require_k(d, ["q"], k_req)
