"""Policy-as-code schema: YAML validated by pydantic, errors that name key and line.

Why: a policy is data that decides who may touch personal data. A typo in a key
must fail loudly at load time (``extra="forbid"``) and the error must point at
the file and line, or reviewers cannot fix it quickly. Semantic checks that a
schema cannot express (unknown roles, duplicate rule ids, grants that a deny
makes dead, grants already expired) live in :func:`check_policy`; errors stop
the load, warnings travel with the policy (:func:`policy_warnings`).

The format (``version: 1``)::

    version: 1
    name: clinic
    roles: [ml-engineer, analyst, contractor]     # principals -> roles live in the identity store
    grants:
      - id: ml-train
        roles: [ml-engineer]
        actions: [train]                          # read read_masked read_quarantine train predict validate erase admin ingest
        datasets: [clinic-visits]                 # names or globs; and/or
        tags: []                                  # dataset tags (any one matches)
        purposes: [readmission-model]             # required: no purpose, no access
        expires: 2027-12-31                       # optional
        masks: {email: drop, patient_id: hash}    # drop | hash | partial
        row_filter: {column: age, op: ">=", value: 18}   # or a list (AND)
        epsilon_cap: 3.0                          # optional, with delta_cap
    deny:
      - id: no-contractors-on-phi
        roles: [contractor]                       # and/or principals: [name]
        actions: ["*"]
        tags: [phi]
    budgets:
      datasets: {clinic-visits: {epsilon: 3.0, delta: 1.0e-5}}
      principals: {alice: {epsilon: 1.0, delta: 1.0e-6}}
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from privacy.errors import InputError

ACTIONS: tuple[str, ...] = ("read", "read_masked", "read_quarantine", "train", "predict", "validate", "erase", "admin",
                             "ingest")
Action = Literal["read", "read_masked", "read_quarantine", "train", "predict", "validate", "erase", "admin", "ingest"]
MaskKind = Literal["drop", "hash", "partial"]
FilterOp = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null"]
Scalar = Union[bool, int, float, str]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _utc_naive(value: dt.datetime | dt.date) -> dt.datetime:
    """All policy times compare as naive UTC (YAML dates mean midnight UTC)."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budget(_Strict):
    """An (ε, δ) cap. YAML reads ``1e-5`` as a string; pydantic parses it."""

    epsilon: float = Field(gt=0)
    delta: float = Field(ge=0, lt=1)


class Condition(_Strict):
    """One row-filter condition: ``{column, op, value}``. Data, never code."""

    column: str = Field(min_length=1, max_length=200)
    op: FilterOp
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> "Condition":
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"op {self.op!r} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} needs a non-empty list value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a single value")
        return self


class _Rule(_Strict):
    id: str
    description: str | None = None
    datasets: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_is_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("id must be letters, digits, '.', '_' or '-' (max 100)")
        return v


class Grant(_Rule):
    """An allow rule: these roles may do these actions for these purposes."""

    roles: list[str] = Field(min_length=1)
    actions: list[Action] = Field(min_length=1)
    purposes: list[str] = Field(min_length=1)
    expires: dt.datetime | dt.date | None = None
    masks: dict[str, MaskKind] = Field(default_factory=dict)
    row_filter: Condition | list[Condition] | None = None
    epsilon_cap: float | None = Field(default=None, gt=0)
    delta_cap: float | None = Field(default=None, ge=0, lt=1)

    @field_validator("expires")
    @classmethod
    def _normalize_expiry(cls, v: dt.datetime | dt.date | None) -> dt.datetime | None:
        return None if v is None else _utc_naive(v)

    @model_validator(mode="after")
    def _has_target(self) -> "Grant":
        if not self.datasets and not self.tags:
            raise ValueError("a grant needs 'datasets' or 'tags' (use datasets: ['*'] for all)")
        return self


class DenyRule(_Rule):
    """An explicit deny; beats every allow. Empty ``purposes`` means any purpose."""

    roles: list[str] = Field(default_factory=list)
    principals: list[str] = Field(default_factory=list)
    actions: list[Action | Literal["*"]] = Field(min_length=1)
    purposes: list[str] = Field(default_factory=list)
    reason: str | None = None

    @model_validator(mode="after")
    def _has_subject_and_target(self) -> "DenyRule":
        if not self.roles and not self.principals:
            raise ValueError("a deny rule needs 'roles' or 'principals' (use roles: ['*'] for everyone)")
        if not self.datasets and not self.tags:
            raise ValueError("a deny rule needs 'datasets' or 'tags' (use datasets: ['*'] for all)")
        return self


class Budgets(_Strict):
    datasets: dict[str, Budget] = Field(default_factory=dict)  # name or glob
    principals: dict[str, Budget] = Field(default_factory=dict)


class Policy(_Strict):
    """A whole policy file. Treat as immutable: the engine caches a compiled index."""

    version: Literal[1] = 1
    name: str
    description: str | None = None
    roles: list[str] = Field(min_length=1)
    grants: list[Grant] = Field(default_factory=list)
    deny: list[DenyRule] = Field(default_factory=list)
    budgets: Budgets = Field(default_factory=Budgets)

    _compiled: Any = PrivateAttr(default=None)
    _warnings: list[str] = PrivateAttr(default_factory=list)
    _source: str = PrivateAttr(default="<policy>")


# --------------------------------------------------------------------------- YAML with lines


@dataclass(frozen=True)
class YamlDoc:
    """Plain Python data plus the line of every key/item path (1-based)."""

    data: Any
    lines: dict[tuple[Any, ...], int]
    source: str

    def line_of(self, loc: tuple[Any, ...]) -> int | None:
        """Line of the longest prefix of ``loc`` that exists in the document."""
        path = tuple(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines)


def load_yaml_with_lines(text: str, source: str = "<string>") -> YamlDoc:
    """Parse YAML safely and record where every key lives, for error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where}: invalid YAML: {problem}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return YamlDoc(data=data, lines=lines, source=source)


def format_validation_error(exc: ValidationError, doc: YamlDoc) -> str:
    """One line: ``file:line: key.path: message`` for the first error (+ count)."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    path = _real_path(doc, loc)
    line = doc.line_of(path)
    key = ".".join(str(p) for p in path) or "<top level>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = f"unknown key {path[-1]!r}" if path else "unknown key"
    where = f"{doc.source}:{line}" if line else doc.source
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where}: {key}: {msg}{more}"


def _real_path(doc: YamlDoc, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union-member labels (e.g. 'Condition', 'list[Condition]') from ``loc``."""
    path: tuple[Any, ...] = ()
    for part in loc:
        if (path + (part,)) in doc.lines or isinstance(part, int):
            path += (part,)
        elif isinstance(part, str) and ("[" in part or part[:1].isupper()):
            continue  # a union label, not a key
        else:
            path += (part,)  # e.g. a missing required key
    return path


# --------------------------------------------------------------------------- semantic checks


@dataclass(frozen=True)
class PolicyIssue:
    level: Literal["error", "warning"]
    code: str
    message: str
    path: tuple[Any, ...]


def check_policy(policy: Policy, now: dt.datetime | None = None) -> list[PolicyIssue]:
    """Problems a schema cannot see. Errors: unknown roles, duplicate ids.
    Warnings: expired grants, grants fully shadowed by a deny, caps above the
    dataset budget, ``read_masked`` grants without masks."""
    now = _utc_naive(now) if now is not None else _utc_naive(dt.datetime.now(dt.timezone.utc))
    issues: list[PolicyIssue] = []
    known = set(policy.roles)
    for i, role in enumerate(policy.roles):
        if not _NAME.match(role):
            issues.append(PolicyIssue("error", "bad-role", f"role {role!r} is not a valid name", ("roles", i)))
    if len(known) != len(policy.roles):
        issues.append(PolicyIssue("error", "duplicate-role", "roles lists a role twice", ("roles",)))

    seen: dict[str, tuple[Any, ...]] = {}
    for kind, rules in (("grants", policy.grants), ("deny", policy.deny)):
        for i, rule in enumerate(rules):
            if rule.id in seen:
                issues.append(PolicyIssue("error", "duplicate-id",
                                          f"rule id {rule.id!r} already used at {'.'.join(map(str, seen[rule.id]))}",
                                          (kind, i, "id")))
            else:
                seen[rule.id] = (kind, i)
            for j, role in enumerate(rule.roles):
                if role != "*" and role not in known:
                    issues.append(PolicyIssue("error", "unknown-role",
                                              f"rule {rule.id!r} refers to unknown role {role!r} "
                                              f"(declared: {', '.join(policy.roles)})", (kind, i, "roles", j)))
                if role == "*" and kind == "grants":
                    issues.append(PolicyIssue("error", "wildcard-grant",
                                              f"grant {rule.id!r}: role '*' is only allowed in deny rules",
                                              (kind, i, "roles", j)))

    for i, g in enumerate(policy.grants):
        if g.expires is not None and g.expires <= now:
            issues.append(PolicyIssue("warning", "expired",
                                      f"grant {g.id!r} expired at {g.expires.isoformat()}", ("grants", i, "expires")))
        if "read_masked" in g.actions and not g.masks:
            issues.append(PolicyIssue("warning", "no-masks",
                                      f"grant {g.id!r} allows read_masked but declares no masks", ("grants", i)))
        for d in policy.deny:
            shadowed = _shadowed_actions(g, d)
            if shadowed:
                issues.append(PolicyIssue("warning", "contradiction",
                                          f"grant {g.id!r} is contradicted by deny {d.id!r} for "
                                          f"{', '.join(shadowed)} on the same roles/datasets/purposes "
                                          f"(the deny wins; the grant is dead there)", ("grants", i)))
        if g.epsilon_cap is not None:
            for pattern, budget in policy.budgets.datasets.items():
                if pattern in g.datasets and g.epsilon_cap > budget.epsilon:
                    issues.append(PolicyIssue("warning", "cap-above-budget",
                                              f"grant {g.id!r} epsilon_cap {g.epsilon_cap} exceeds the budget "
                                              f"{budget.epsilon} of {pattern!r} (the smaller applies)",
                                              ("grants", i, "epsilon_cap")))
        if (g.epsilon_cap is None) != (g.delta_cap is None):
            issues.append(PolicyIssue("error", "cap-pair",
                                      f"grant {g.id!r}: give epsilon_cap and delta_cap together",
                                      ("grants", i)))
    return issues


def _shadowed_actions(g: Grant, d: DenyRule) -> list[str]:
    """Actions of ``g`` that ``d`` denies under every condition the grant allows.

    Conservative: reports only when the deny covers all the grant's roles, every
    dataset pattern and tag the grant names (identically or via '*'), and all its
    purposes; principal-specific denies never count (they distinguish)."""
    if not d.roles:
        return []
    if "*" not in d.roles and not set(g.roles) <= set(d.roles):
        return []
    if d.purposes and not set(g.purposes) <= set(d.purposes):
        return []
    covers_targets = (
        "*" in d.datasets
        or (set(g.datasets) <= set(d.datasets) and set(g.tags) <= set(d.tags) and (g.datasets or g.tags))
        or (not g.datasets and g.tags and set(g.tags) & set(d.tags) == set(g.tags))
    )
    if not covers_targets:
        return []
    if "*" in d.actions:
        return list(g.actions)
    return [a for a in g.actions if a in d.actions]


# --------------------------------------------------------------------------- loading


def parse_policy(text: str, source: str = "<string>", now: dt.datetime | None = None) -> Policy:
    """Validate policy YAML text. Raises :class:`InputError` naming file, line and key."""
    doc = load_yaml_with_lines(text, source)
    if not isinstance(doc.data, dict):
        raise InputError(f"{source}: a policy must be a YAML mapping with 'name', 'roles' and 'grants'")
    try:
        policy = Policy.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, doc)) from None
    issues = check_policy(policy, now)
    errors = [i for i in issues if i.level == "error"]
    if errors:
        first = errors[0]
        line = doc.line_of(first.path)
        key = ".".join(str(p) for p in first.path)
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise InputError(f"{source}:{line}: {key}: {first.message}{more}")
    policy._source = source
    policy._warnings = [f"{source}:{doc.line_of(i.path)}: {i.message}" for i in issues]
    return policy


def load_policy(path: Path | str, now: dt.datetime | None = None) -> Policy:
    """Load and validate a policy file; warnings are kept, see :func:`policy_warnings`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{p}: cannot read policy file ({exc.strerror})") from None
    return parse_policy(text, str(p), now)


def policy_warnings(policy: Policy) -> list[str]:
    """Warnings found at load time (expired grants, contradictions), one line each."""
    return list(policy._warnings)
