"""Decision engine: deny by default, deny wins, purposes, expiry, tags, obligations, caps."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.engine import (
    Request,
    budget_for,
    compile_policy,
    decide,
    describe_row_filter,
    principal_budget,
    row_filter_mask,
)
from policies.schema import ACTIONS, Policy
from privacy.errors import InputError

NOW = dt.datetime(2026, 6, 1)


def policy(**over) -> Policy:
    base = {
        "name": "t",
        "roles": ["ml-engineer", "analyst", "contractor", "data-engineer"],
        "grants": [
            {"id": "train", "roles": ["ml-engineer"], "actions": ["train"], "datasets": ["clinic-visits"],
             "purposes": ["readmission-model"], "epsilon_cap": 5.0, "delta_cap": 1e-5},
            {"id": "review", "roles": ["analyst"], "actions": ["read_masked"], "tags": ["phi"],
             "purposes": ["quality-review"], "masks": {"email": "drop", "patient_id": "hash"},
             "row_filter": [{"column": "age", "op": ">=", "value": 18}, {"column": "site", "op": "in", "value": ["a", "b"]}]},
            {"id": "ingest", "roles": ["data-engineer"], "actions": ["ingest", "validate"], "datasets": ["clinic-*"],
             "purposes": ["pipeline"], "expires": "2026-12-31T00:00:00Z"},
        ],
        "deny": [{"id": "no-contractors", "roles": ["contractor"], "actions": ["*"], "tags": ["phi"],
                  "reason": "contractors never access PHI"}],
        "budgets": {"datasets": {"clinic-visits": {"epsilon": 3.0, "delta": 1e-5}, "clinic-*": {"epsilon": 1.0, "delta": 1e-6}},
                    "principals": {"intern": {"epsilon": 0.5, "delta": 1e-6}}},
    }
    base.update(over)
    return Policy.model_validate(base)


def req(roles, action, purpose, dataset="clinic-visits", tags=("phi",), principal="demo", now=NOW) -> Request:
    return Request(principal, list(roles), action, dataset, list(tags), purpose, now)


P = policy()


def test_allow_with_grant_and_purpose():
    d = decide(req(["ml-engineer"], "train", "readmission-model"), P)
    assert d.allowed and d.rule == "train" and "allowed by grant 'train'" in d.reason


def test_deny_by_default():
    for action in ACTIONS:
        d = decide(req(["data-scientist"], action, "anything"), P)
        assert not d.allowed and "deny by default" in d.reason and d.rule is None
    assert not decide(req([], "train", "readmission-model"), P).allowed
    assert not decide(req(["ml-engineer"], "train", "readmission-model"), policy(grants=[], deny=[])).allowed


def test_unknown_action_is_denied():
    d = decide(req(["ml-engineer"], "delete-everything", "readmission-model"), P)
    assert not d.allowed and "unknown action" in d.reason


def test_no_purpose_denies_every_data_access():
    for purpose in (None, ""):
        d = decide(req(["ml-engineer"], "train", purpose), P)
        assert not d.allowed and "no purpose" in d.reason


def test_wrong_purpose_is_denied_with_reason():
    d = decide(req(["ml-engineer"], "train", "marketing"), P)
    assert not d.allowed and "purpose 'marketing' is not allowed" in d.reason and d.rule == "train"


def test_explicit_deny_beats_any_allow():
    d = decide(req(["ml-engineer", "contractor"], "train", "readmission-model"), P)
    assert not d.allowed and d.rule == "no-contractors" and "contractors never access PHI" in d.reason
    # deny applies via tags; without the phi tag the contractor role does not block
    assert decide(req(["ml-engineer", "contractor"], "train", "readmission-model", tags=()), P).allowed


def test_deny_by_principal_and_purpose_scoped_deny():
    p = policy(deny=[{"id": "no-bob", "principals": ["bob"], "actions": ["train"], "datasets": ["*"]},
                     {"id": "no-marketing", "roles": ["*"], "actions": ["*"], "datasets": ["*"], "purposes": ["ads"]}])
    assert decide(req(["ml-engineer"], "train", "readmission-model", principal="bob"), p).rule == "no-bob"
    assert decide(req(["ml-engineer"], "train", "readmission-model", principal="alice"), p).allowed
    assert decide(req(["ml-engineer"], "train", "ads"), p).rule == "no-marketing"


def test_expiry():
    ok = decide(req(["data-engineer"], "ingest", "pipeline", now=dt.datetime(2026, 12, 30, 23, 59)), P)
    assert ok.allowed
    late = decide(req(["data-engineer"], "ingest", "pipeline", now=dt.datetime(2026, 12, 31)), P)
    assert not late.allowed and "expired" in late.reason and late.rule == "ingest"
    aware = dt.datetime(2026, 12, 31, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 23:30 UTC the day before
    assert decide(req(["data-engineer"], "ingest", "pipeline", now=aware), P).allowed


def test_globs_and_tags():
    assert decide(req(["data-engineer"], "validate", "pipeline", dataset="clinic-labs", tags=()), P).allowed
    assert not decide(req(["data-engineer"], "validate", "pipeline", dataset="adult-census", tags=()), P).allowed
    assert decide(req(["analyst"], "read_masked", "quality-review", dataset="other", tags=["phi"]), P).allowed
    assert not decide(req(["analyst"], "read_masked", "quality-review", dataset="other", tags=["pii"]), P).allowed


def test_masks_and_row_filter_obligations():
    d = decide(req(["analyst"], "read_masked", "quality-review"), P)
    assert d.allowed
    assert d.obligations.column_masks == {"email": "drop", "patient_id": "hash"}
    assert describe_row_filter(d.obligations.row_filter) == "age >= 18 AND site in ['a', 'b']"
    df = pd.DataFrame({"age": [17, 18, None, 40], "site": ["a", "b", "a", "c"]})
    assert row_filter_mask(d.obligations.row_filter, df).tolist() == [False, True, False, False]
    with pytest.raises(InputError, match="column 'site'"):
        row_filter_mask(d.obligations.row_filter, df[["age"]])
    d.obligations.column_masks["email"] = "keep"  # callers get a copy, the policy is unchanged
    assert decide(req(["analyst"], "read_masked", "quality-review"), P).obligations.column_masks["email"] == "drop"


def test_epsilon_caps_take_the_minimum():
    d = decide(req(["ml-engineer"], "train", "readmission-model"), P)
    assert (d.obligations.epsilon_cap, d.obligations.delta_cap) == (3.0, 1e-5)  # dataset budget < grant cap
    d = decide(req(["ml-engineer"], "train", "readmission-model", principal="intern"), P)
    assert (d.obligations.epsilon_cap, d.obligations.delta_cap) == (0.5, 1e-6)  # principal cap
    assert decide(req(["data-engineer"], "ingest", "pipeline", dataset="clinic-labs"), P).obligations.epsilon_cap == 1.0


def test_budget_for_prefers_exact_name_over_glob():
    assert budget_for(P, "clinic-visits") == (3.0, 1e-5)
    assert budget_for(P, "clinic-labs") == (1.0, 1e-6)
    assert budget_for(P, "adult-census") is None
    assert principal_budget(P, "intern") == (0.5, 1e-6) and principal_budget(P, "demo") is None


def test_first_matching_grant_in_file_order_wins():
    grants = [
        {"id": "strict", "roles": ["analyst"], "actions": ["read_masked"], "datasets": ["d"], "purposes": ["p"],
         "masks": {"a": "drop"}},
        {"id": "loose", "roles": ["ml-engineer"], "actions": ["read_masked"], "datasets": ["d"], "purposes": ["p"]},
    ]
    p = policy(grants=grants, deny=[])
    assert decide(req(["ml-engineer", "analyst"], "read_masked", "p", dataset="d"), p).rule == "strict"


def test_compiled_index_is_cached_and_keyed_by_action_and_role():
    p = policy()
    cp = compile_policy(p)
    assert compile_policy(p) is cp
    assert ("train", "ml-engineer") in cp.grants and ("read", "contractor") in cp.deny_roles


# --------------------------------------------------------------------------- property

ROLES = ["r1", "r2", "r3"]
DATASETS = ["d1", "d2", "x-1"]
TAGS = ["phi", "pii"]
PURPOSES = ["p1", "p2"]

targets = st.one_of(
    st.fixed_dictionaries({"datasets": st.lists(st.sampled_from(DATASETS + ["*", "x-*"]), min_size=1, max_size=2)}),
    st.fixed_dictionaries({"tags": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)}),
)
grant_st = st.builds(
    lambda roles, actions, purposes, target, exp: {"roles": roles, "actions": actions, "purposes": purposes,
                                                    **target, **({"expires": exp} if exp else {})},
    st.lists(st.sampled_from(ROLES), min_size=1, max_size=2),
    st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3),
    st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2),
    targets,
    st.sampled_from([None, "2026-01-01", "2027-01-01"]),
)
deny_st = st.builds(
    lambda roles, principals, actions, purposes, target: {"roles": roles, "principals": principals, "actions": actions,
                                                          "purposes": purposes, **target},
    st.lists(st.sampled_from(ROLES + ["*"]), min_size=1, max_size=2),
    st.lists(st.sampled_from(["alice", "bob"]), max_size=1),
    st.lists(st.sampled_from(list(ACTIONS) + ["*"]), min_size=1, max_size=2),
    st.lists(st.sampled_from(PURPOSES), max_size=1),
    targets,
)
request_st = st.builds(
    lambda principal, roles, action, dataset, tags, purpose: Request(principal, roles, action, dataset, tags, purpose, NOW),
    st.sampled_from(["alice", "bob", "carol"]),
    st.lists(st.sampled_from(ROLES), max_size=3),
    st.sampled_from(ACTIONS),
    st.sampled_from(DATASETS),
    st.lists(st.sampled_from(TAGS), max_size=2),
    st.sampled_from(PURPOSES + [None]),
)


def make(grants, denies) -> Policy:
    return Policy.model_validate({
        "name": "prop", "roles": ROLES,
        "grants": [{"id": f"g{i}", **g} for i, g in enumerate(grants)],
        "deny": [{"id": f"d{i}", **d} for i, d in enumerate(denies)],
    })


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(grant_st, max_size=5), st.lists(deny_st, max_size=3), deny_st, st.lists(request_st, min_size=1, max_size=8))
def test_adding_a_deny_rule_never_turns_a_deny_into_an_allow(grants, denies, extra, requests):
    before, after = make(grants, denies), make(grants, denies + [extra])
    for r in requests:
        b, a = decide(r, before), decide(r, after)
        if not b.allowed:
            assert not a.allowed
        if a.allowed:  # and an allow that survives keeps the same grant and obligations
            assert b.allowed and (a.rule, a.obligations) == (b.rule, b.obligations)


@settings(max_examples=200, deadline=None)
@given(st.lists(grant_st, max_size=5), st.lists(deny_st, max_size=3), request_st)
def test_no_purpose_is_never_allowed(grants, denies, r):
    r.purpose = None
    assert not decide(r, make(grants, denies)).allowed
