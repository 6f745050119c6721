"""Pipeline YAML → pydantic model, with errors that name key and line.

Why: a user fixing a pipeline file needs "line 12: key `training.epochz`:
unknown key", not a pydantic traceback. Parsing and the key → line map come
from `policies.schema.load_yaml_file` (one loader for every YAML file
privgov reads); this module only turns pydantic's first error into that line.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from policies.schema import YamlDoc, load_yaml_file, one_line
from privacy.errors import InputError


def validation_message(path: Path, exc: ValidationError, doc: YamlDoc) -> str:
    """First pydantic error as `file: line N: key `a.b`: what was expected`."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = doc.line_of(loc)
    where = f" line {line}:" if line else ""
    if err["type"] == "extra_forbidden":
        what = "unknown key"
    elif err["type"] == "missing":
        what = "required key is missing"
    else:
        what = err["msg"]
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{path}:{where} key `{one_line(key)}`: {one_line(what)}{suffix}"


def parse_model(path: Path, model: type[BaseModel]) -> BaseModel:
    """Load YAML at `path` into `model`, raising one-line InputErrors."""
    return validate_doc(load_yaml_file(path, "YAML file"), model, path)


def validate_doc(doc: YamlDoc, model: type[BaseModel], source: Path) -> BaseModel:
    """A parsed document (a file's, or text sent to the server) into `model`, errors naming `source`."""
    if not isinstance(doc.data, dict):
        raise InputError(f"{source}: expected a YAML mapping at the top level")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(validation_message(source, exc, doc)) from None
