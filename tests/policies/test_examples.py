"""Every example policy loads cleanly and passes its own cases file."""
from __future__ import annotations

from pathlib import Path

import pytest

from policies.casetest import load_cases, run_cases
from policies.engine import budget_for
from policies.schema import load_policy, policy_warnings
from privacy.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
POLICIES = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.stem.endswith("_cases"))


def test_examples_exist():
    assert {p.stem for p in POLICIES} >= {"clinic", "adult"}


@pytest.mark.parametrize("policy_path", POLICIES, ids=lambda p: p.stem)
def test_example_passes_its_cases(policy_path):
    cases = policy_path.with_name(policy_path.stem + "_cases.yaml")
    assert cases.exists(), f"{policy_path.name} has no cases file"
    report = run_cases(policy_path, cases)
    assert report.ok, report.format()
    assert report.total >= 5 and not report.warnings


def test_demo_budgets():
    assert budget_for(load_policy(EXAMPLES / "clinic.yaml"), "clinic-visits") == (3.0, 1e-5)
    assert budget_for(load_policy(EXAMPLES / "adult.yaml"), "adult-census") == (10.0, 1e-5)
    assert policy_warnings(load_policy(EXAMPLES / "clinic.yaml")) == []


def test_a_wrong_expectation_fails_with_file_and_line(tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text("defaults: {now: 2026-06-01}\ncases:\n"
                     "  - name: contractor trains\n    roles: [contractor]\n    action: train\n"
                     "    dataset: clinic-visits\n    tags: [phi]\n    purpose: readmission-model\n    expect: allow\n"
                     "  - name: obligations mismatch\n    roles: [ml-engineer]\n    action: train\n"
                     "    dataset: clinic-visits\n    purpose: readmission-model\n    expect: allow\n"
                     "    obligations: {epsilon_cap: 99.0}\n")
    report = run_cases(EXAMPLES / "clinic.yaml", cases)
    assert not report.ok and report.passed == 0
    text = report.format()
    assert f"{cases}:3: contractor trains: expected allow, got deny" in text
    assert "epsilon_cap 3.0 != expected 99.0" in text and "0/2 cases passed" in text


def test_cases_file_unknown_key_names_line(tmp_path):
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - name: x\n    action: train\n    dataset: d\n    expect: allow\n    expct: deny\n")
    with pytest.raises(InputError, match=r"cases\.yaml:6: cases\.0\.expct: unknown key 'expct'"):
        load_cases(cases)
