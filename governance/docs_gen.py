"""Write the reference pages generated from the pydantic models: `docs/pipeline.md`, `docs/policy.md`.

Why: the pipeline and policy YAML formats are defined by the models that
validate them (`governance.run.spec`, `policies.schema`); rendering the pages
from those models means a field added there appears in the docs with its type,
default and description, and `tests/test_docs_gen.py` fails ("run `make docs`")
until the checked-in pages are regenerated.

Usage: ``python -m governance.docs_gen [--out DIR]`` (``make docs``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from governance.run.spec import PipelineSpec
from policies.docs_gen import policy_reference, render
from policies.schema import load_yaml_file

ROOT = Path(__file__).resolve().parents[1]
DOCS_DIR = ROOT / "docs"
EXAMPLE_PIPELINES = ROOT / "examples"

PIPELINE_INTRO = """
A pipeline is a YAML file declaring one governed run: where the rows come from, the
quality gate, cleaning, de-identification, the dataset version it stores and, optionally,
differentially private training (`privgov run PIPELINE`). Unknown keys and wrong types are
refused with the file and line before any data is read. Relative paths resolve against
the pipeline file's folder. The pipeline's principal, policy, privacy unit and tags are
claims checked against the token and what an admin bound (see `docs/policy.md`). Paths
below are dotted: `training.hidden` is `hidden` inside `training`. Examples come from
`examples/*/pipeline.yaml`.
"""


def pipeline_documents() -> list[Any]:
    """The example pipelines, parsed (not validated: `${VAR}` paths stay as written)."""
    return [load_yaml_file(p, "pipeline file").data for p in sorted(EXAMPLE_PIPELINES.glob("*/pipeline.yaml"))]


def pipeline_reference() -> str:
    """``docs/pipeline.md``."""
    return render("Pipeline file reference", PIPELINE_INTRO, PipelineSpec, pipeline_documents())


def pages() -> dict[str, str]:
    """File name -> generated Markdown."""
    return {"pipeline.md": pipeline_reference(), "policy.md": policy_reference()}


def write_pages(out_dir: Path) -> list[Path]:
    """Write every page into ``out_dir`` (created if missing); the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m governance.docs_gen", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS_DIR, help="Folder to write into (default: docs/).")
    args = parser.parse_args(argv)
    for path in write_pages(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
