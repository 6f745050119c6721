"""``privgov policy test POLICY.yaml CASES.yaml``: policies carry their own tests.

Why: like OPA, a policy is code that decides who sees personal data; a change
must be checked against the cases its authors care about before it is loaded.
A cases file is YAML::

    defaults:                       # optional, merged into every case
      now: 2026-06-01T00:00:00Z     # without 'now' a case uses the current time
      principal: demo
    cases:
      - name: ml-engineer may train for the readmission model
        roles: [ml-engineer]
        action: train
        dataset: clinic-visits
        tags: [phi]
        purpose: readmission-model
        expect: allow                # allow | deny
        reason: "ml-train"           # optional substring of the decision reason
        obligations:                 # optional; only the keys given are compared
          epsilon_cap: 3.0
          column_masks: {email: drop}
          row_filter: [{column: age, op: ">=", value: 18}]

Unknown keys are errors naming file and line, as in policies.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from policies.engine import Decision, Request, decide
from policies.schema import (
    Condition,
    _utc_naive,
    format_validation_error,
    load_policy,
    load_yaml_file,
    policy_warnings,
)
from privacy.errors import InputError


class ExpectedObligations(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column_masks: dict[str, str] | None = None
    row_filter: Condition | list[Condition] | None = None
    no_row_filter: bool = False
    epsilon_cap: float | None = None
    delta_cap: float | None = None


class CaseDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal: str | None = None
    roles: list[str] | None = None
    action: str | None = None
    dataset: str | None = None
    tags: list[str] | None = None
    purpose: str | None = None
    now: dt.datetime | dt.date | None = None


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    principal: str = "test-principal"
    roles: list[str] = Field(default_factory=list)
    action: str
    dataset: str
    tags: list[str] = Field(default_factory=list)
    purpose: str | None = None
    now: dt.datetime | dt.date | None = None
    expect: Literal["allow", "deny"]
    reason: str | None = None
    rule: str | None = None
    obligations: ExpectedObligations | None = None

    @field_validator("now")
    @classmethod
    def _now_in_range(cls, v: dt.datetime | dt.date | None) -> dt.datetime | dt.date | None:
        if v is not None:
            _utc_naive(v)  # raises ValueError (a schema error) for unrepresentable times
        return v


class CasesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: CaseDefaults = Field(default_factory=CaseDefaults)
    cases: list[Case] = Field(min_length=1)


@dataclass
class CaseResult:
    name: str
    line: int | None
    passed: bool
    expected: str
    got: str
    reason: str
    problems: list[str] = field(default_factory=list)


@dataclass
class CaseReport:
    policy: str
    cases_file: str
    results: list[CaseResult]
    warnings: list[str]

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> int:
        return self.total - len(self.failed)

    @property
    def ok(self) -> bool:
        return not self.failed

    def format(self) -> str:
        """Plain-text summary for the CLI: one line per failing case, then the count."""
        lines = [f"warning: {w}" for w in self.warnings]
        for r in self.failed:
            where = f"{self.cases_file}:{r.line}" if r.line else self.cases_file
            lines.append(f"FAIL {where}: {r.name}: expected {r.expected}, got {r.got} "
                         f"({r.reason}){'; ' + '; '.join(r.problems) if r.problems else ''}")
        lines.append(f"{self.passed}/{self.total} cases passed")
        return "\n".join(lines)


def load_cases(path: Path | str) -> tuple[CasesFile, dict[int, int]]:
    """Parse and validate a cases file; returns the cases and each case's line."""
    p = Path(path)
    doc = load_yaml_file(p, "cases file")
    if not isinstance(doc.data, dict):
        raise InputError(f"{p}: a cases file must be a mapping with a 'cases' list")
    data = dict(doc.data)
    defaults = data.get("defaults") or {}
    if isinstance(defaults, dict) and isinstance(data.get("cases"), list):
        data["cases"] = [({**{k: v for k, v in defaults.items() if v is not None}, **c}
                          if isinstance(c, dict) else c) for c in data["cases"]]
    try:
        parsed = CasesFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, doc)) from None
    lines = {i: doc.lines.get(("cases", i), 0) for i in range(len(parsed.cases))}
    return parsed, lines


def _check(case: Case, d: Decision) -> list[str]:
    problems: list[str] = []
    if case.reason is not None and case.reason not in d.reason:
        problems.append(f"reason {d.reason!r} lacks {case.reason!r}")
    if case.rule is not None and case.rule != d.rule:
        problems.append(f"rule {d.rule!r} != expected {case.rule!r}")
    exp = case.obligations
    if exp is not None:
        ob = d.obligations
        if exp.column_masks is not None and exp.column_masks != ob.column_masks:
            problems.append(f"column_masks {ob.column_masks} != expected {exp.column_masks}")
        if exp.row_filter is not None:
            conds = exp.row_filter if isinstance(exp.row_filter, list) else [exp.row_filter]
            want = json.dumps([c.model_dump() for c in conds], sort_keys=True, separators=(",", ":"))
            if want != ob.row_filter:
                problems.append(f"row_filter {ob.row_filter} != expected {want}")
        if exp.no_row_filter and ob.row_filter is not None:
            problems.append(f"row_filter {ob.row_filter} present, expected none")
        if exp.epsilon_cap is not None and exp.epsilon_cap != ob.epsilon_cap:
            problems.append(f"epsilon_cap {ob.epsilon_cap} != expected {exp.epsilon_cap}")
        if exp.delta_cap is not None and exp.delta_cap != ob.delta_cap:
            problems.append(f"delta_cap {ob.delta_cap} != expected {exp.delta_cap}")
    return problems


def run_cases(policy_path: Path | str, cases_path: Path | str) -> CaseReport:
    """Decide every case against the policy and compare with the expectation."""
    policy = load_policy(policy_path)
    cases, lines = load_cases(cases_path)
    results: list[CaseResult] = []
    wall = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for i, case in enumerate(cases.cases):
        now = _utc_naive(case.now) if case.now is not None else wall
        req = Request(principal=case.principal, roles=list(case.roles), action=case.action,
                      dataset=case.dataset, tags=list(case.tags), purpose=case.purpose, now=now)
        d = decide(req, policy)
        got = "allow" if d.allowed else "deny"
        problems = [] if got != case.expect else _check(case, d)
        results.append(CaseResult(name=case.name, line=lines.get(i), passed=got == case.expect and not problems,
                                  expected=case.expect, got=got, reason=d.reason, problems=problems))
    return CaseReport(policy=str(policy_path), cases_file=str(cases_path), results=results,
                      warnings=policy_warnings(policy))
