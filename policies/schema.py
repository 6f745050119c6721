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
    privacy:                                      # required when any grant allows `train`
      unit: patient_id                            # the column naming one person; epsilon is per value
      max_rows_per_unit: 25                       # the bound the trainer uses for that person's rows
    # or, when every row is a different person:
    # privacy: {unit: row, statement: "each row is a distinct person (one census record per adult)"}
    processing:                                   # GDPR Art. 30 record (policies/processing.py); optional,
      controller: "Example Clinic, dpo@clinic.example"   # but the report flags every field left out
      purposes: [readmission-model]
      legal_basis: "Art. 6(1)(e); Art. 9(2)(h)"
      data_categories: [visit records, demographics]
      data_subjects: [patients]
      recipients: [internal ML team]
      retention: "10 years after the last visit"
      safeguards: [encryption at rest, pseudonymization, differential privacy]
    pii:                                          # the pipeline PII gate (defaults shown)
      threshold: 0.8                              # detector confidence from which a direct identifier must be transformed
      allow_keep: false                           # may a pipeline acknowledge one and store it in clear?
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from policies.processing import ProcessingRecord
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
        try:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00
            raise ValueError("date is out of range once converted to UTC") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budget(_Strict):
    """An (ε, δ) cap. YAML reads ``1e-5`` as a string; pydantic parses it."""

    epsilon: float = Field(gt=0, description="Epsilon of the cap: a dataset's total over all its runs (composed "
                           "by the ledger's filter), or a principal's limit per run.")
    delta: float = Field(ge=0, lt=1, description="Delta of the cap (`1.0e-5`; YAML reads `1e-5` as a string, "
                         "which is parsed too).")
    # Fraction of (epsilon, delta) set aside, when the cap is bound, for runs the
    # ledger can only charge by basic composition (group-bounded training). The
    # rest is the Renyi filter's. Fixed in advance: see privacy/filter.py.
    basic_share: float = Field(default=0.0, ge=0, lt=1, examples=[0.2], description=(
        "Fraction of (epsilon, delta) set aside, when the cap is bound, for group-bounded training runs "
        "that the ledger can only charge by basic composition; fixed in advance."))


class Condition(_Strict):
    """One row-filter condition: ``{column, op, value}``. Data, never code."""

    column: str = Field(min_length=1, max_length=200, description="Column the condition reads; a filter on a "
                        "column the version lacks denies (fail closed).")
    op: FilterOp = Field(description="Comparison; `in`/`not_in` take a non-empty list, `is_null`/`not_null` no value.")
    value: Scalar | list[Scalar] | None = Field(default=None, description="The value compared with (a list for "
                                                "`in`/`not_in`, nothing for the null tests).")

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
    id: str = Field(description="Unique rule id (letters, digits, `.`, `_`, `-`; max 100); decisions and audit "
                    "events name it.")
    description: str | None = Field(default=None, examples=["Contractors never see patient records."],
                                     description="Free text for reviewers.")
    datasets: list[str] = Field(default_factory=list, examples=[["clinic-*"]], description=(
        "Dataset names or globs (`clinic-*`, `*`) the rule covers; give `datasets` and/or `tags`."))
    tags: list[str] = Field(default_factory=list, description="Dataset tags (set when the policy is bound); the "
                            "rule covers a dataset carrying any one of them.")

    @field_validator("id")
    @classmethod
    def _id_is_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("id must be letters, digits, '.', '_' or '-' (max 100)")
        return v


class Grant(_Rule):
    """An allow rule: these roles may do these actions for these purposes."""

    roles: list[str] = Field(min_length=1, description="Roles (declared in `roles`) the grant allows; `*` is "
                             "refused here.")
    actions: list[Action] = Field(min_length=1, description="Actions allowed.")
    purposes: list[str] = Field(min_length=1, description="Purposes the caller must declare; no purpose, no access.")
    expires: dt.datetime | dt.date | None = Field(default=None, examples=["2027-12-31"], description=(
        "After this instant (a date means midnight UTC) the grant no longer allows anything."))
    masks: dict[str, MaskKind] = Field(default_factory=dict, description="Column -> mask applied to every "
                                       "release under this grant: `drop`, `hash` (keyed HMAC) or `partial`.")
    row_filter: Condition | list[Condition] | None = Field(default=None, description="Rows released: one "
                                                           "condition, or a list that must all hold (AND).")
    epsilon_cap: float | None = Field(default=None, gt=0, description="Largest epsilon one run under this grant "
                                      "may spend; give with `delta_cap`.")
    delta_cap: float | None = Field(default=None, ge=0, lt=1, description="Largest delta one run under this grant "
                                    "may spend; give with `epsilon_cap`.")

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

    roles: list[str] = Field(default_factory=list, description="Roles denied (`*`: everyone); give `roles` "
                             "and/or `principals`.")
    principals: list[str] = Field(default_factory=list, examples=[["mallory"]], description="Principal names "
                                  "denied, whatever their roles.")
    actions: list[Action | Literal["*"]] = Field(min_length=1, description="Actions denied; `*` denies all.")
    purposes: list[str] = Field(default_factory=list, examples=[["marketing"]], description="Purposes the deny "
                                "applies to; empty means any purpose.")
    reason: str | None = Field(default=None, description="Why; shown in the denial's audit record.")

    @model_validator(mode="after")
    def _has_subject_and_target(self) -> "DenyRule":
        if not self.roles and not self.principals:
            raise ValueError("a deny rule needs 'roles' or 'principals' (use roles: ['*'] for everyone)")
        if not self.datasets and not self.tags:
            raise ValueError("a deny rule needs 'datasets' or 'tags' (use datasets: ['*'] for all)")
        return self


class Budgets(_Strict):
    datasets: dict[str, Budget] = Field(default_factory=dict, description="Dataset name or glob -> the (epsilon, "
                                        "delta) cap of its lineage, set when the policy is bound (exact names "
                                        "before globs).")
    principals: dict[str, Budget] = Field(default_factory=dict, examples=[{"alice": {"epsilon": 1.0, "delta": 1e-6}}],
                                          description="Principal name -> the largest (epsilon, delta) one of "
                                          "their runs may spend.")


ROW_UNIT = "row"


class PrivacySection(_Strict):
    """Who epsilon protects: the privacy unit and the bound on one unit's rows, declared by an admin.

    Why in the policy text: the unit decides what "one person" means for every
    epsilon the platform publishes. A pipeline that could leave it out or name
    another column could turn a per-patient guarantee into a per-visit one and
    spend a fresh budget. So the admin who writes (and binds) the policy declares
    it, and runs may only restate it. ``unit: row`` is allowed only with a
    ``statement`` saying why each row is a distinct person: the claim is then on
    record, reviewable, beside the budget it justifies."""

    unit: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description=(
        "The column naming one person (epsilon is per value of it), or `row` when every row is a distinct person."))
    max_rows_per_unit: int | None = Field(default=None, ge=1, le=1_000_000, description=(
        "Declared bound on one unit's rows; required for a column unit (rows beyond it are not trained on under "
        "group bounding), 1 or absent for `row`."))
    statement: str | None = Field(default=None, max_length=1000, description=(
        "Why each row is a distinct person; required with `unit: row`, kept on record beside the budget."))

    @model_validator(mode="after")
    def _unit_has_its_bound(self) -> "PrivacySection":
        if self.unit == ROW_UNIT:
            if not (self.statement or "").strip():
                raise ValueError("privacy unit `row` needs a `statement` saying why each row is a distinct person "
                                 "(e.g. \"each row is a distinct person\"); otherwise name the column of the unit")
            if self.max_rows_per_unit not in (None, 1):
                raise ValueError("privacy unit `row` means one row per person: max_rows_per_unit must be 1 or left out")
        elif self.max_rows_per_unit is None:
            raise ValueError(f"privacy unit `{self.unit}` needs `max_rows_per_unit`, the declared bound on one "
                             "unit's rows (rows beyond it are not trained on under group bounding)")
        return self

    @property
    def column(self) -> str | None:
        """The unit's column, None when each row is its own person."""
        return None if self.unit == ROW_UNIT else self.unit

    @property
    def rows_bound(self) -> int:
        return 1 if self.unit == ROW_UNIT else int(self.max_rows_per_unit or 1)


DEFAULT_PII_THRESHOLD = 0.8


class PiiSection(_Strict):
    """How the pipeline PII gate treats the datasets this policy is bound to.

    Why in the policy: storing a direct identifier in clear is an admin decision, not a
    pipeline author's. ``threshold`` is the detector confidence from which a column
    counts as a direct identifier that must be transformed; ``allow_keep`` lets a
    pipeline acknowledge one and keep it (``pii: {COLUMN: {action: keep, reason}}``,
    audited). Deny by default: without this section keeps are refused at 0.8."""

    threshold: float = Field(default=DEFAULT_PII_THRESHOLD, gt=0, le=1, examples=[0.8], description="Detector "
                             "confidence from which a detected direct identifier must be transformed.")
    allow_keep: bool = Field(default=False, examples=[False], description="May a pipeline keep a detected "
                             "identifier in clear with `pii: {COL: {action: keep, reason}}` (audited)?")


class Policy(_Strict):
    """A whole policy file. Treat as immutable: the engine caches a compiled index."""

    version: Literal[1] = Field(default=1, description="Format version of the policy file.")
    name: str = Field(description="Policy name, shown in decisions, bindings and the report.")
    description: str | None = Field(default=None, description="Free text for reviewers.")
    roles: list[str] = Field(min_length=1, description="Every role the rules may name; principals get roles in "
                             "the identity store (`privgov principal add`), not here.")
    grants: list[Grant] = Field(default_factory=list, description="Allow rules; the first matching grant in file "
                                "order decides (deny by default).")
    deny: list[DenyRule] = Field(default_factory=list, description="Explicit denies; a matching deny beats every "
                                 "grant.")
    budgets: Budgets = Field(default_factory=Budgets, description="Privacy budget caps per dataset and per "
                             "principal.")
    privacy: PrivacySection | None = Field(default=None, description="Who epsilon protects; required when any "
                                           "grant allows `train` (`policy bind` refuses otherwise).")
    processing: ProcessingRecord | None = Field(default=None, description="GDPR Art. 30 record of processing "
                                                "(controller, purposes, legal basis, categories, recipients, "
                                                "retention, safeguards); optional, and the report flags it when "
                                                "absent or incomplete.")
    pii: PiiSection = Field(default_factory=PiiSection, description="The pipeline PII gate: the detector "
                            "confidence from which a direct identifier must be transformed, and whether a "
                            "pipeline may acknowledge one and keep it in clear (deny by default).")

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


# Limits on what any privgov YAML file may be. Real policies and pipelines are a
# few KiB with a handful of anchors; anything beyond these is a mistake or an
# attack (alias bombs expand exponentially, deep nesting overflows the stack).
MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_ALIASES = 50
MAX_YAML_NODES = 200_000  # after alias expansion, as pydantic and the key map would see it
_MAX_SHOWN = 80


def one_line(text: str, limit: int = 300) -> str:
    """Make a message fragment safe for a one-line error: escape control characters, truncate.

    Why: keys and values come from the user's file; a key with a newline must not
    turn one ``error:`` line into several."""
    out = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))
    return out if len(out) <= limit else out[: limit - 3] + "..."


class _Refused(Exception):
    """A limit of the safe loader was hit; carries the 1-based line where known."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that bounds depth, aliases and expanded size, and rejects duplicate keys.

    PyYAML shares aliased nodes, so an alias bomb is cheap to compose but explodes
    in anything that walks the tree (the key-line map, pydantic); counting the
    expanded size of every node while composing stops it before anything walks."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}
        self._open_anchors: set[str] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise _Refused(f"more than {MAX_YAML_ALIASES} aliases (*name); write the values out", line)
            if event.anchor in self._open_anchors:
                raise _Refused(f"alias *{one_line(event.anchor, _MAX_SHOWN)} refers to a node that contains it", line)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _Refused(f"nested deeper than {MAX_YAML_DEPTH} levels", line)
        anchor = event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)

    def compose_sequence_node(self, anchor: Any) -> Any:
        line = self.peek_event().start_mark.line + 1
        return self._sized(super().compose_sequence_node(anchor), line)

    def compose_mapping_node(self, anchor: Any) -> Any:
        line = self.peek_event().start_mark.line + 1
        node = self._sized(super().compose_mapping_node(anchor), line)
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue  # merge keys may override; complex keys fail at construction
            ident = self._key_identity(key_node)
            if ident in seen:
                raise _Refused(f"duplicate key `{one_line(key_node.value, _MAX_SHOWN)}` "
                               f"(first at line {seen[ident]})", key_node.start_mark.line + 1)
            seen[ident] = key_node.start_mark.line + 1
        return node

    _PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float"))

    def _key_identity(self, key_node: yaml.ScalarNode) -> tuple[str, Any]:
        """`yes` and `true` (or `0x1` and `1`) are the same key once constructed."""
        if key_node.tag in self._PLAIN_TAGS:
            try:
                return key_node.tag, self.yaml_constructors[key_node.tag](self, key_node)
            except (ValueError, TypeError, yaml.YAMLError):
                pass  # reported by construction with its own message
        return key_node.tag, key_node.value

    def _sized(self, node: Any, line: int) -> Any:
        """Record the node's size with aliases expanded; refuse it past the limit."""
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
        size = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        if size > MAX_YAML_NODES:
            raise _Refused(f"expands to more than {MAX_YAML_NODES} values (an alias bomb?)", line)
        self._sizes[id(node)] = size
        return node


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines)


def load_yaml_with_lines(text: str, source: str = "<string>") -> YamlDoc:
    """Parse YAML safely and record where every key lives, for error messages.

    The one YAML parser of privgov: every file goes through the limits of
    :class:`_BoundedLoader` (size, depth, aliases, expanded size, duplicate keys),
    and every failure is one :class:`InputError` line naming ``source`` (and line)."""
    if len(text) > MAX_YAML_BYTES:
        raise InputError(f"{source}: YAML file is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; "
                         "expected a small declaration")
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader rejects non-printable characters here
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        raise InputError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["parse error"])[0]
        raise InputError(f"{where}: invalid YAML: {one_line(problem)}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # SafeConstructor lets some scalars through to Python: `2026-13-45` as a
        # date, `!!int x`, integers past Python's digit limit.
        raise InputError(f"{source}: invalid YAML value: {one_line(str(exc), 120)}") from None
    except (RecursionError, MemoryError):
        raise InputError(f"{source}: YAML too deeply nested or too large to parse") from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return YamlDoc(data=data, lines=lines, source=source)


def load_yaml_file(path: Path | str, what: str = "YAML file") -> YamlDoc:
    """Read ``path`` (size-checked, UTF-8) and parse it with :func:`load_yaml_with_lines`.

    Why one reader: directories, unreadable files, huge files and non-UTF-8 bytes
    must give the same one-line InputError whichever command reads the file."""
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(f"{p}: expected a {what}, found a directory")
        with p.open("rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{p}: cannot read {what} (no such file)") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read {what} ({exc.strerror or type(exc).__name__})") from None
    except ValueError:  # e.g. a NUL byte in a path taken from another file
        raise InputError(f"{one_line(str(p))}: cannot read {what} (not a valid path)") from None
    if len(raw) > MAX_YAML_BYTES:
        raise InputError(f"{p}: {what} is larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; "
                         "expected a small declaration")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: {what} is not UTF-8 text (bad byte at offset {exc.start})") from None
    return load_yaml_with_lines(text, str(p))


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
    return f"{where}: {one_line(key)}: {one_line(msg)}{more}"


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
    rule_lists: tuple[tuple[str, Sequence[Grant | DenyRule]], ...] = (("grants", policy.grants), ("deny", policy.deny))
    for kind, rules in rule_lists:
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
        if "train" in g.actions and policy.privacy is None:
            issues.append(PolicyIssue("warning", "no-privacy-unit",
                                      f"grant {g.id!r} allows train but the policy declares no `privacy:` unit; "
                                      "`privgov policy bind` refuses it", ("grants", i, "actions")))
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
    return _parse_policy_doc(load_yaml_with_lines(text, source), now)


def _parse_policy_doc(doc: YamlDoc, now: dt.datetime | None) -> Policy:
    source = doc.source
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
        raise InputError(f"{source}:{line}: {one_line(key)}: {one_line(first.message)}{more}")
    policy._source = source
    policy._warnings = [f"{source}:{doc.line_of(i.path)}: {one_line(i.message)}" for i in issues]
    return policy


def load_policy(path: Path | str, now: dt.datetime | None = None) -> Policy:
    """Load and validate a policy file; warnings are kept, see :func:`policy_warnings`."""
    p = Path(path)
    return _parse_policy_doc(load_yaml_file(p, "policy file"), now)


def policy_warnings(policy: Policy) -> list[str]:
    """Warnings found at load time (expired grants, contradictions), one line each."""
    return list(policy._warnings)
