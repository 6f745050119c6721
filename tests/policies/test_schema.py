"""Policy schema: unknown keys and bad values name key and line; semantic checks."""
from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from policies.schema import (
    MAX_YAML_ALIASES,
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    check_policy,
    load_policy,
    load_yaml_file,
    load_yaml_with_lines,
    parse_policy,
    policy_warnings,
)
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
    privacy: {unit: patient_id, max_rows_per_unit: 10}
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
    assert msg.startswith("p.yaml:28: ") and "unknown key 'owner'" in msg


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
    with pytest.raises(InputError, match=r"p\.yaml:28: extra: unknown key 'extra'"):
        load_policy(tmp_path / "p.yaml")
    with pytest.raises(InputError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- the hardened YAML loader


def _refusal(text: str) -> str:
    with pytest.raises(InputError) as exc:
        load_yaml_with_lines(text, "f.yaml")
    return str(exc.value)


def test_loader_refuses_duplicate_keys_with_line():
    assert _refusal("a: 1\nb:\n  c: 1\n  c: 2\n") == "f.yaml:4: duplicate key `c` (first at line 3)"
    # `yes` and `true` are one key once constructed
    assert _refusal("yes: 1\ntrue: 2\n").startswith("f.yaml:2: duplicate key `true`")


def test_loader_keeps_merge_keys_and_a_few_anchors():
    doc = load_yaml_with_lines("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\nd: [*b, *b]\n", "f.yaml")
    assert doc.data["c"] == {"x": 3, "y": 2} and doc.data["d"] == [{"x": 1, "y": 2}] * 2


def test_loader_refuses_alias_bombs_before_expanding_them():
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    msg = _refusal("\n".join(lines))
    assert msg.startswith("f.yaml:") and "alias" in msg
    # few aliases but exponential expansion: each level doubles
    chain = ["a0: &a0 [x, x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 25)]
    assert f"more than {MAX_YAML_NODES} values" in _refusal("\n".join(chain))
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_YAML_ALIASES + 1)) + "]\n"
    assert _refusal(many).startswith("f.yaml:2: more than 50 aliases")


def test_loader_refuses_recursive_aliases_and_deep_nesting():
    assert "refers to a node that contains it" in _refusal("a: &a [1, *a]\n")
    assert _refusal("x: " + "[" * 5000 + "]" * 5000) == f"f.yaml:1: nested deeper than {MAX_YAML_DEPTH} levels"
    nested = "x: " + "[" * (MAX_YAML_DEPTH - 2) + "]" * (MAX_YAML_DEPTH - 2)
    assert load_yaml_with_lines(nested, "f.yaml").data["x"] is not None  # just under the limit loads


def test_loader_turns_python_value_errors_into_input_errors():
    assert _refusal("x: 2026-13-45\n") == "f.yaml: invalid YAML value: month must be in 1..12"
    assert _refusal("x: " + "9" * 5000).startswith("f.yaml: invalid YAML value: Exceeds the limit")
    assert "could not determine a constructor" in _refusal("x: !!python/object/apply:os.system [ls]\n")
    assert "invalid YAML: unacceptable character" in _refusal("x: \x00\n")
    assert _refusal("x: '" + "s" * (MAX_YAML_BYTES + 1) + "'").startswith("f.yaml: YAML file is larger than 2 MiB")


def test_load_yaml_file_refuses_directories_binary_and_huge_files(tmp_path):
    with pytest.raises(InputError, match=r"expected a policy file, found a directory"):
        load_yaml_file(tmp_path, "policy file")
    (tmp_path / "bin.yaml").write_bytes(b"name: \xff\xfe")
    with pytest.raises(InputError, match=r"bin\.yaml: policy file is not UTF-8 text \(bad byte at offset 6\)"):
        load_yaml_file(tmp_path / "bin.yaml", "policy file")
    (tmp_path / "big.yaml").write_bytes(b"#" * (MAX_YAML_BYTES + 1))
    with pytest.raises(InputError, match=r"big\.yaml: policy file is larger than 2 MiB"):
        load_policy(tmp_path / "big.yaml")


def test_keys_with_newlines_stay_on_one_line():
    msg = error_of(BASE + '"own\\ner": 1\n')
    assert "\n" not in msg and "own\\ner" in msg


# --------------------------------------------------------------------------- the privacy section


def test_privacy_section_declares_unit_and_rows_bound():
    p = parse_policy(BASE, "p.yaml", now=NOW)
    assert (p.privacy.unit, p.privacy.column, p.privacy.rows_bound) == ("patient_id", "patient_id", 10)


@pytest.mark.parametrize("section, needle", [
    ("{unit: row}", "statement"),
    ("{unit: row, statement: '  '}", "statement"),
    ("{unit: row, statement: each row is a person, max_rows_per_unit: 3}", "max_rows_per_unit"),
    ("{unit: patient_id}", "max_rows_per_unit"),
    ("{unit: patient_id, max_rows_per_unit: 0}", "max_rows_per_unit"),
    ("{unit: patient_id, max_rows_per_unit: 5, bound: 3}", "unknown key 'bound'"),
])
def test_privacy_section_is_refused_without_what_makes_it_true(section, needle):
    """`row` is a claim about the data, so it comes with its statement; a column comes with its bound."""
    text = BASE.replace("privacy: {unit: patient_id, max_rows_per_unit: 10}", f"privacy: {section}")
    msg = error_of(text)
    assert msg.startswith("p.yaml:27: ") and "privacy" in msg and needle in msg and "\n" not in msg


def test_row_unit_with_its_statement_loads():
    text = BASE.replace("privacy: {unit: patient_id, max_rows_per_unit: 10}",
                        "privacy: {unit: row, statement: each row is a distinct person}")
    p = parse_policy(text, "p.yaml", now=NOW)
    assert (p.privacy.column, p.privacy.rows_bound) == (None, 1)


def test_a_training_policy_without_a_unit_is_warned_about():
    text = BASE.replace("privacy: {unit: patient_id, max_rows_per_unit: 10}\n", "")
    warnings = policy_warnings(parse_policy(text, "p.yaml", now=NOW))
    assert len(warnings) == 1 and "train" in warnings[0] and "privacy" in warnings[0]


def test_pii_section_defaults_deny_keeps():
    """Without a `pii:` section the gate uses threshold 0.8 and refuses keeps (deny by default)."""
    p = parse_policy(BASE, "p.yaml", now=NOW)
    assert (p.pii.threshold, p.pii.allow_keep) == (0.8, False)
    p = parse_policy(BASE + "pii: {threshold: 0.9, allow_keep: true}\n", "p.yaml", now=NOW)
    assert (p.pii.threshold, p.pii.allow_keep) == (0.9, True)


@pytest.mark.parametrize("section, key", [
    ("pii: {threshold: 1.5}", "pii.threshold"),
    ("pii: {threshold: 0}", "pii.threshold"),
    ("pii: {allow_keep: maybe}", "pii.allow_keep"),
    ("pii: {alow_keep: true}", "pii.alow_keep"),
])
def test_pii_section_bad_values_name_key_and_line(section, key):
    msg = error_of(BASE + section + "\n")
    assert msg.startswith("p.yaml:28: ") and key in msg
