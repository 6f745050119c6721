"""Reference pages generated from pydantic models: every field, its type, default and an example.

Why generated: a hand-written schema page drifts the day someone adds a field.
The models that validate privgov's YAML files are the single source of truth, so
the reference is rendered from them (types, defaults, constraints, the
``Field(description=...)``) and a test regenerates it and compares with the
checked-in page (``make docs`` rewrites it). Examples come from the field's own
``examples=`` or, failing that, from the example files shipped in the repository,
so they are values that really load.

This module is generic (any ``BaseModel``) and lives in ``policies`` so that the
policy page is rendered without importing ``governance``;
``governance.docs_gen`` uses it for the pipeline page too.
"""
from __future__ import annotations

import datetime as dt
import enum
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from policies.schema import Policy, load_yaml_file

POLICY_EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
GENERATED_NOTE = "<!-- Generated from the code by `make docs` (python -m governance.docs_gen); do not edit by hand. -->"
UNDOCUMENTED = "(undocumented)"
_CONSTRAINTS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="),
                ("min_length", "min length"), ("max_length", "max length"), ("pattern", "pattern"))


@dataclass(frozen=True)
class FieldDoc:
    """One row of a reference table: a YAML key at a dotted path (``grants[].id``)."""

    path: str
    type: str
    required: bool
    default: str
    description: str
    constraints: str
    example: str
    nested: tuple[str, ...] = ()  # sections below documenting the field's own fields


@dataclass(frozen=True)
class ModelSection:
    """A model's fields under one heading (the top level, then each nested model in order)."""

    path: str
    model: type[BaseModel]
    fields: tuple[FieldDoc, ...]
    also: tuple[str, ...] = ()  # other paths the same model is written at (``row_filter`` or ``row_filter[]``)


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def type_name(annotation: Any) -> str:
    """A YAML-minded rendering of a type: ``list[str] | null``, ``"csv" | "parquet"``."""
    annotation = _strip(annotation)
    origin = get_origin(annotation)
    if annotation is type(None):
        return "null"
    if annotation is Any:
        return "any"
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(annotation))
    if origin in (list, tuple, set, frozenset, Sequence):
        return f"list[{', '.join(type_name(a) for a in get_args(annotation) if a is not Ellipsis)}]"
    if origin is dict:
        key, value = get_args(annotation)
        return f"map[{type_name(key)}, {type_name(value)}]"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return annotation.__name__
        if issubclass(annotation, enum.Enum):
            return " | ".join(f'"{m.value}"' for m in annotation)
        if issubclass(annotation, dt.datetime):
            return "datetime"
        if issubclass(annotation, dt.date):
            return "date"
        if issubclass(annotation, Path):
            return "path"
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__)
    return str(annotation)


def nested_models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models inside a field's type, with the path suffix their fields sit under.

    ``Model`` -> ``("", Model)``; ``list[Model]`` -> ``("[]", Model)``;
    ``dict[str, Model]`` -> ``(".<name>", Model)``; unions are searched member by member."""
    annotation = _strip(annotation)
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
    elif origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            yield from nested_models(arg)
    elif origin in (list, tuple, set, frozenset, Sequence):
        for arg in get_args(annotation):
            yield from ((f"[]{suffix}", m) for suffix, m in nested_models(arg))
    elif origin is dict:
        yield from ((f".<name>{suffix}", m) for suffix, m in nested_models(get_args(annotation)[1]))


def _compact(value: Any) -> str:
    """A value as YAML on one line (flow style), the way it would be written in the file."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, Path):
        value = str(value)
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()
    return text.removesuffix("\n...").strip()


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True, validated_data={})
    if isinstance(value, BaseModel):
        return "(all defaults)"
    return _compact(value)


def _constraints(info: FieldInfo) -> str:
    found: list[str] = []
    for meta in info.metadata:
        for attr, word in _CONSTRAINTS:
            value = getattr(meta, attr, None)
            if value is not None:
                found.append(f"{word} `{value}`" if attr == "pattern" else f"{word} {value}")
    return ", ".join(found)


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _lookup(doc: Any, keys: Sequence[str]) -> Any:
    """The value at a dotted path in a loaded YAML document; ``[]`` takes the first item having it,
    ``<name>`` the first entry of a mapping. PydanticUndefined when absent."""
    if not keys:
        return doc
    key, rest = keys[0], keys[1:]
    if key == "[]":
        for item in doc if isinstance(doc, list) else []:
            found = _lookup(item, rest)
            if found is not PydanticUndefined:
                return found
        return PydanticUndefined
    if key == "<name>":
        for value in doc.values() if isinstance(doc, dict) else []:
            found = _lookup(value, rest)
            if found is not PydanticUndefined:
                return found
        return PydanticUndefined
    if isinstance(doc, dict) and key in doc:
        return _lookup(doc[key], rest)
    return PydanticUndefined


def _path_keys(path: str) -> list[str]:
    return [k for k in path.replace("[]", ".[]").split(".") if k]


def _wrap(keys: Sequence[str], value: Any) -> Any:
    """A document holding ``value`` at ``keys`` (the inverse of :func:`_lookup`)."""
    for key in reversed(keys):
        value = [value] if key == "[]" else {key: value}
    return value


def _example(info: FieldInfo, path: str, documents: Sequence[Any]) -> str:
    if info.examples:
        return _compact(info.examples[0])
    extra = info.json_schema_extra
    declared = extra.get("examples") if isinstance(extra, dict) else None
    if isinstance(declared, list) and declared:
        return _compact(declared[0])
    for doc in documents:
        found = _lookup(doc, _path_keys(path))
        if found is not PydanticUndefined:
            return _compact(found)
    return ""


def sections(model: type[BaseModel], documents: Sequence[Any] = (), path: str = "") -> list[ModelSection]:
    """The model's documented fields (excluded ones are not YAML keys), then each nested model's, depth first."""
    rows: list[FieldDoc] = []
    nested: list[ModelSection] = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        full = f"{path}.{name}" if path else name
        subs: dict[type[BaseModel], list[str]] = {}
        for suffix, sub in nested_models(info.annotation):
            subs.setdefault(sub, []).append(full + suffix)
        rows.append(FieldDoc(path=full, type=type_name(info.annotation), required=info.is_required(),
                             default=_default(info), description=_one_line(info.description or UNDOCUMENTED),
                             constraints=_constraints(info),
                             # a nested model's own section shows its fields' examples
                             example=_example(info, full, [] if subs else documents),
                             nested=tuple(p for paths in subs.values() for p in paths[:1])))
        inner = list(documents)
        if info.examples:  # a declared example of the whole field also serves its nested fields
            inner.append(_wrap(_path_keys(full), info.examples[0]))
        for sub, paths in subs.items():
            first, *rest = sections(sub, inner, paths[0])
            nested += [ModelSection(first.path, first.model, first.fields, tuple(paths[1:])), *rest]
    return [ModelSection(path=path, model=model, fields=tuple(rows)), *nested]


def _cell(text: str) -> str:
    return f"`{text}`" if text else ""


def _table(section: ModelSection) -> list[str]:
    out = ["| field | type | default | description | example |", "|---|---|---|---|---|"]
    for f in section.fields:
        desc = f.description + (f" ({f.constraints})" if f.constraints else "")
        example = _cell(_one_line(f.example)) or ", ".join(f"see `{n}`" for n in f.nested)
        default = "**required**" if f.required else _cell(_one_line(f.default))
        out.append(f"| `{f.path}` | {_one_line(f.type)} | {default} | {desc} | {example} |")
    return out + [""]


def _docstring(model: type[Any]) -> list[str]:
    doc = model.__doc__
    if not doc or doc is BaseModel.__doc__:
        return []
    return [" ".join(doc.split()), ""]


def render(title: str, intro: str, model: type[BaseModel], documents: Sequence[Any] = (), extra: str = "") -> str:
    """The Markdown reference page for ``model``: one table per (nested) model, fields by dotted path;
    ``extra`` (e.g. :func:`variants`) is appended."""
    out = [f"# {title}", "", GENERATED_NOTE, "", intro.strip(), ""]
    for section in sections(model, documents):
        heading = f"`{section.path}`" if section.path else "Top level"
        out += [f"## {heading} ({section.model.__name__})", "", *_docstring(section.model)]
        if section.also:
            out += ["Also written as " + ", ".join(f"`{a}`" for a in section.also)
                    + " (the same fields under that path).", ""]
        out += _table(section)
    return "\n".join(out) + (f"\n{extra}" if extra else "")


@dataclass(frozen=True)
class Variant:
    """One kind of item in a list of tagged mappings (``{step: NAME, ...}``, ``{action: drop, ...}``)."""

    tag: dict[str, str]           # the keys that select this kind, e.g. {"step": "impute"}
    model: type[BaseModel]        # its parameters
    doc_from: type[Any] | None = None  # where the description comes from, when not the model


def variants(heading: str, intro: str, path: str, kinds: Sequence[Variant], documents: Sequence[Any] = ()) -> str:
    """A section documenting each kind of item of the list at ``path``, with examples taken only
    from items of that kind in ``documents``."""
    out = [f"## {heading}", "", intro.strip(), ""]
    keys = _path_keys(path)
    for kind in kinds:
        label = ", ".join(f"{k}: {v}" for k, v in kind.tag.items())
        lists = [found for doc in documents if isinstance(found := _lookup(doc, keys), list)]
        matching = [item for items in lists for item in items
                    if isinstance(item, dict) and all(item.get(k) == v for k, v in kind.tag.items())]
        docs = [_wrap(keys, matching)] if matching else []
        out += [f"### `{label}`", "", *_docstring(kind.doc_from or kind.model)]
        rows = sections(kind.model, docs, f"{path}[]")
        for section in rows:
            if section.path != f"{path}[]":
                out += [f"`{section.path}`:", ""]
            out += _table(section)
    return "\n".join(out)


POLICY_INTRO = """
A policy is a YAML file that decides who may do what with a dataset and why
(`privgov policy test` checks it against expected decisions; `privgov policy bind`
binds it to a dataset, and the bound text is the only policy that applies to it).
Unknown keys are rejected with the file and line. Paths below are dotted: `grants[].id`
is the `id` of each item of `grants`, `budgets.datasets.<name>.epsilon` the `epsilon`
of each named entry. Examples come from `policies/examples/`.
"""


def policy_documents() -> list[Any]:
    """The example policies (not the decision cases), parsed, in file-name order."""
    return [load_yaml_file(p, "policy file").data for p in sorted(POLICY_EXAMPLES_DIR.glob("*.yaml"))
            if not p.stem.endswith("_cases")]


def policy_reference() -> str:
    """``docs/policy.md``."""
    return render("Policy file reference", POLICY_INTRO, Policy, policy_documents())
