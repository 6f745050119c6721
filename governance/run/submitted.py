"""A pipeline submitted over the network: parsed from text, its files confined to one directory.

Why its own module: a pipeline file on a laptop may name any file its author
can read, but a pipeline sent to the server is written by a token holder who
must not make the server read (or write) files of its choosing. Every path the
pipeline names must lie inside the server's data directory, reached without a
symbolic link (a link could point anywhere later), and `${VAR}`/`~` are not
expanded (they would reveal the server's environment). The HTML report, which
the CLI writes relative to the working directory, is refused: the server has
no working directory the caller owns. The worker applies the same check again
right before it reads anything.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from governance.run.spec import PipelineSpec
from governance.yaml_source import validate_doc
from policies.schema import YamlDoc, load_yaml_with_lines, one_line
from privacy.errors import InputError

SOURCE = Path("pipeline")  # how errors name the submitted document
MAX_PIPELINE_CHARS = 256 * 1024


def parse_submitted(pipeline: str | dict[str, Any], data_dir: Path | None) -> PipelineSpec:
    """YAML text or a JSON object → a checked spec whose relative paths resolve inside `data_dir`."""
    if isinstance(pipeline, str):
        if len(pipeline) > MAX_PIPELINE_CHARS:
            raise InputError(f"pipeline: larger than {MAX_PIPELINE_CHARS // 1024} KiB; expected a small declaration")
        doc = load_yaml_with_lines(pipeline, str(SOURCE))
    elif isinstance(pipeline, dict):
        doc = YamlDoc(data=pipeline, lines={}, source=str(SOURCE))
    else:
        raise InputError("pipeline: expected YAML text or a JSON object")
    spec = validate_doc(doc, PipelineSpec, SOURCE)
    assert isinstance(spec, PipelineSpec)
    root = Path(os.path.realpath(data_dir)) if data_dir is not None else None
    spec.base_dir = root if root is not None else Path("/nonexistent-data-dir")
    confine(spec, root)
    return spec


def canonical(spec: PipelineSpec) -> str:
    """The spec as stored with the job and hashed: sorted JSON of what was declared."""
    return json.dumps(spec.model_dump(mode="json", exclude_unset=True), sort_keys=True, separators=(",", ":"))


def pipeline_sha256(spec: PipelineSpec) -> str:
    return hashlib.sha256(canonical(spec).encode()).hexdigest()


def _paths(spec: PipelineSpec) -> list[tuple[str, str]]:
    out = [("source.path", spec.source.path), ("source.test_path", spec.source.test_path),
           ("quality.suite", spec.quality.suite if spec.quality else None), ("policy", spec.policy)]
    return [(field, value) for field, value in out if value is not None]


def confine(spec: PipelineSpec, root: Path | None) -> None:
    """Refuse (InputError naming the field) any file outside `root`, through a link, or missing."""
    if spec.report is not None:
        raise InputError("pipeline: key `report`: not available for server runs (the server writes no files for "
                         "the caller); render the report with `privgov report` instead")
    for field, rel in _paths(spec):
        shown = one_line(rel, 200)
        if root is None:
            raise InputError(f"pipeline: key `{field}`: `{shown}` names a file but the server has no data directory "
                             "(`privgov serve --data-dir DIR`); only `source.sample` pipelines can run")
        if "\0" in rel or "$" in rel or rel.startswith("~"):
            raise InputError(f"pipeline: key `{field}`: `{shown}`: variables and `~` are not expanded for server "
                             "runs; give a path relative to the server data directory")
        given = Path(rel) if Path(rel).is_absolute() else root / rel
        lexical = Path(os.path.normpath(given))
        real = Path(os.path.realpath(given))
        if not lexical.is_relative_to(root) or real != lexical:
            raise InputError(f"pipeline: key `{field}`: `{shown}` is outside the server data directory or reached "
                             "through a symbolic link; expected a file inside it")
        if not real.is_file():
            raise InputError(f"pipeline: key `{field}`: `{shown}`: no such file in the server data directory")


__all__ = ["canonical", "confine", "parse_submitted", "pipeline_sha256"]
