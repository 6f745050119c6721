"""Policy schema: unknown keys and bad values name key and line; semantic checks."""
from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from policies.schema import check_policy, load_policy, parse_policy, policy_warnings
from privacy.errors import InputError

NOW = dt.datetime(2026, 6, 1)

BASE = textwrap.dedent("""\
    version: 1
    name: t
    roles: [ml-engineer, analyst, contractor]
    grants:
      - id: train
        roles: [ml-engineer]
        actions: [train]
        datasets: [clinic-visits]
        purposes: [readmission-model]
        epsilon_cap: 3.0
        delta_cap: 1.0e-5
      - id: review
        roles: [analyst]
        actions: [read_masked]
        tags: [phi]
        purposes: [quality-review]
        masks: {email: drop, patient_id: hash}
        row_filter: {column: age, op: ">=", value: 18}
    deny:
      - id: no-contractors
        roles: [contractor]
        actions: ["*"]
        tags: [phi]
    budgets:
      datasets:
        clinic-visits: {epsilon: 3.0, delta: 1e-5}
    """)


def error_of(text: str) -> str:
    with pytest.raises(InputError) as exc:
        parse_policy(text, "p.yaml", now=NOW)
    return str(exc.value)


def test_base_policy_loads():
    p = parse_policy(BASE, "p.yaml", now=NOW)
    assert [g.id for g in p.grants] == ["train", "review"]
    assert p.budgets.datasets["clinic-visits"].delta == 1e-5  # YAML '1e-5' is a string; still parsed
    assert policy_warnings(p) == []


def test_unknown_key_names_key_and_line():
    text = BASE.replace("    purposes: [quality-review]\n", "    purposes: [quality-review]\n    purpse: x\n")
    msg = error_of(text)
    assert msg.startswith("p.yaml:17: ") and "purpse" in msg and "grants.1.purpse" in msg


def test_unknown_top_level_key():
    msg = error_of(BASE + "owner: me\n")
    assert msg.startswith("p.yaml:27: ") and "unknown key 'owner'" in msg


def test_unknown_key_inside_row_filter():
    msg = error_of(BASE.replace('value: 18}', 'value: 18, sql: "1=1"}'))
    assert msg.startswith("p.yaml:18: ") and "sql" in msg


def test_bad_action_names_line():
    msg = error_of(BASE.replace("actions: [train]", "actions: [trian]"))
    assert msg.startswith("p.yaml:7: ") and "grants.0.actions.0" in msg


def test_missing_required_key():
    assert "name" in error_of(BASE.replace("name: t\n", "")) and "required" in error_of(BASE.replace("name: t\n", ""))


def test_bad_mask_kind():
    msg = error_of(BASE.replace("email: drop", "email: scramble"))
    assert "p.yaml:17" in msg and "masks.email" in msg


def test_row_filter_value_must_fit_op():
    assert "non-empty list" in error_of(BASE.replace('op: ">=", value: 18', 'op: in, value: 18'))
    assert "takes no value" in error_of(BASE.replace('op: ">=", value: 18', 'op: is_null, value: 18'))


def test_grant_needs_target_and_purpose():
    assert "datasets" in error_of(BASE.replace("    datasets: [clinic-visits]\n", "", 1))
    assert "purposes" in error_of(BASE.replace("    purposes: [readmission-model]\n", ""))


def test_unknown_role_is_an_error_with_line():
    msg = error_of(BASE.replace("roles: [analyst]", "roles: [analyts]"))
    assert msg.startswith("p.yaml:13: ") and "unknown role 'analyts'" in msg


def test_duplicate_rule_ids_are_an_error():
    msg = error_of(BASE.replace("id: review", "id: train"))
    assert msg.startswith("p.yaml:12: ") and "'train' already used" in msg


def test_caps_come_in_pairs():
    assert "together" in error_of(BASE.replace("    delta_cap: 1.0e-5\n", ""))


def test_wildcard_role_only_in_denies():
    assert "only allowed in deny" in error_of(BASE.replace("roles: [ml-engineer]", 'roles: ["*"]'))


def test_invalid_yaml_names_line():
    assert error_of("version: 1\nname: [unclosed\n").startswith("p.yaml:3: invalid YAML")


def test_expired_grant_is_a_warning_not_an_error():
    p = parse_policy(BASE.replace("    epsilon_cap: 3.0\n", "    expires: 2026-01-01\n    epsilon_cap: 3.0\n"),
                     "p.yaml", now=NOW)
    assert any("p.yaml:10" in w and "'train' expired" in w for w in policy_warnings(p))


def test_contradictory_grant_is_reported():
    text = BASE.replace("deny:\n", "deny:\n  - id: analysts-off-phi\n    roles: [analyst]\n"
                                     "    actions: [read_masked, read]\n    tags: [phi]\n")
    warnings = policy_warnings(parse_policy(text, "p.yaml", now=NOW))
    assert any(w.startswith("p.yaml:12: ") and "'review' is contradicted by deny 'analysts-off-phi'" in w
               and "read_masked" in w for w in warnings)


def test_purpose_specific_deny_is_not_a_contradiction():
    issues = check_policy(parse_policy(BASE, now=NOW).model_copy(update={}), NOW)
    assert issues == []
    text = BASE.replace("deny:\n", "deny:\n  - id: d\n    roles: [analyst]\n    actions: [read_masked]\n"
                                   "    tags: [phi]\n    purposes: [marketing]\n")
    assert not any(i.code == "contradiction" for i in check_policy(parse_policy(text, now=NOW), NOW))


def test_load_policy_from_file(tmp_path):
    (tmp_path / "p.yaml").write_text(BASE + "extra: 1\n")
    with pytest.raises(InputError, match=r"p\.yaml:27: extra: unknown key 'extra'"):
        load_policy(tmp_path / "p.yaml")
    with pytest.raises(InputError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
