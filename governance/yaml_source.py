"""YAML loading that remembers where each key came from.

Why: a user fixing a pipeline or policy file needs "line 12: unknown key
`epochz`", not a pydantic traceback. We keep a map from the key path
(as pydantic reports it in `loc`) to the YAML line so validation errors can be
turned into one-line messages naming file, key and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from privacy.errors import InputError


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines)
            # keep the key's own line for the key path (value may start later)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, path + (index,), lines)


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """Parse `path`; return (data, {key path: line}). InputError on unreadable YAML."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8", errors="strict") if path.is_file() else None
    if text is None:
        raise InputError(f"{path}: expected a YAML file, found a directory")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    probe = tuple(loc)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return lines.get(())


def validation_message(path: Path, exc: ValidationError, lines: dict[tuple[Any, ...], int]) -> str:
    """First pydantic error as `file: line N: key `a.b`: what was expected`."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_for(loc, lines)
    where = f" line {line}:" if line else ""
    if err["type"] == "extra_forbidden":
        what = "unknown key"
    elif err["type"] == "missing":
        what = "required key is missing"
    else:
        what = err["msg"]
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{path}:{where} key `{key}`: {what}{suffix}"


def parse_model(path: Path, model: type[BaseModel]) -> BaseModel:
    """Load YAML at `path` into `model`, raising one-line InputErrors."""
    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a YAML mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_message(path, exc, lines)) from None
