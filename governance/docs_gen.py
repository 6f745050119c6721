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
import inspect
import sys
from pathlib import Path
from typing import Any, get_args

from governance.run.spec import PipelineSpec
from policies.docs_gen import GENERATED_NOTE, Variant, policy_reference, render, variants
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


def _step_kinds() -> str:
    """The parameters of every cleaning step and de-identification step a pipeline may declare."""
    from governance.data.cleaning import step_classes
    from privacy.deid.transforms import Spec

    documents = pipeline_documents()
    cleaning = [Variant({"step": name}, cls.Params, cls) for name, cls in step_classes().items()]
    deid = []
    for model in get_args(Spec):
        tag = {k: get_args(model.model_fields[k].annotation)[0] for k in ("action", "method")
               if k in model.model_fields}
        deid.append(Variant(tag, model))
    return "\n".join([
        variants("Cleaning steps", "Each item of `cleaning` is `{step: NAME, ...parameters}`; a step records "
                 "how many rows and values it changed and which row ids it dropped, never values.",
                 "cleaning", cleaning, documents),
        variants("De-identification steps", "Each item of `deid.steps` is `{column: NAME, action: ...}`; "
                 "`generalize` takes a `method`. Steps act on each row alone unless noted (`suppress_rare` "
                 "counts values).", "deid.steps", deid, documents),
    ])


def pipeline_reference() -> str:
    """``docs/pipeline.md``."""
    return render("Pipeline file reference", PIPELINE_INTRO, PipelineSpec, pipeline_documents(), _step_kinds())


API_INTRO = """
`privgov.api` (the same objects as `governance.api`) is the typed Python surface for
orchestrators and notebooks: open a workspace, run a pipeline, read a version with a
token, check a decision and verify the audit log. Each function wraps the code path the
`privgov` CLI uses - the same token check, the one authorization path under the
dataset's bound policy, the same audit events - so nothing here bypasses a check. The
package ships a `py.typed` marker. Importing it loads neither pandas nor SQLAlchemy.

```python
from privgov import api

ws = api.open_workspace("/srv/privgov")                 # or $PRIVGOV_WORKSPACE, ./.privgov
check = api.check_decision(ws, "train", "clinic-visits", purpose="readmission-model")
if check.allowed:                                       # the question itself is audited
    summary = api.run_pipeline(ws, "examples/clinic/pipeline.yaml")
    print(summary.run_uid, summary.version, summary.epsilon_spent)
masked = api.read_version(ws, "clinic-visits", purpose="quality-review", token=analyst_token)
assert api.verify_audit(ws, trusted_key=open("signing.pub").read()).ok
```

`token=None` means `$PRIVGOV_TOKEN`. Failures raise the exceptions below; their
`exit_code` is the one the CLI exits with. Orchestrator examples calling this API:
`examples/airflow/privgov_clinic_dag.py`, `examples/dagster/privgov_clinic_assets.py`
(`pip install 'privgov[airflow]'` or `'privgov[dagster]'`).
"""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "").strip()


def _unquote(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return text.replace("'", "").replace('"', "")


def _signature(fn: Any) -> str:
    """``name(a: T, *, b: U = None) -> R`` with the string annotations written as types."""
    sig = inspect.signature(fn)
    params: list[str] = []
    star_done = False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star_done:
            params.append("*")
            star_done = True
        text = p.name if p.annotation is p.empty else f"{p.name}: {_unquote(p.annotation)}"
        params.append(text if p.default is p.empty else f"{text} = {p.default!r}")
    return f"{fn.__name__}({', '.join(params)}) -> {_unquote(sig.return_annotation)}"


def _code_cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def api_reference() -> str:
    """``docs/api.md``: every name in ``governance.api.__all__`` with its signature and docstring."""
    import dataclasses

    from governance import api

    out = ["# Python API reference", "", GENERATED_NOTE, "", API_INTRO.strip(), ""]
    functions = [n for n in api.__all__ if inspect.isfunction(getattr(api, n))]
    classes = [n for n in api.__all__ if inspect.isclass(getattr(api, n))
               and not issubclass(getattr(api, n), BaseException)]
    errors = [n for n in api.__all__ if inspect.isclass(getattr(api, n)) and issubclass(getattr(api, n), BaseException)]
    out += ["## Functions", ""]
    for name in functions:
        fn = getattr(api, name)
        out += [f"### `{name}`", "", "```python", _signature(fn), "```", "", _doc(fn), ""]
    out += ["## Types", ""]
    for name in classes:
        cls = getattr(api, name)
        out += [f"### `{name}` (`{cls.__module__}`)", "", _doc(cls), ""]
        if dataclasses.is_dataclass(cls):
            out += ["| field | type |", "|---|---|"]
            out += [f"| `{f.name}` | {_code_cell(_unquote(f.type))} |" for f in dataclasses.fields(cls)]
            out.append("")
    out += ["## Errors", "", "| exception | exit code | meaning |", "|---|---|---|"]
    for name in errors:
        exc = getattr(api, name)
        out.append(f"| `{name}` | {exc.exit_code} | {' '.join(_doc(exc).split()) or '-'} |")
    out.append("")
    return "\n".join(out)


def pages() -> dict[str, str]:
    """File name -> generated Markdown."""
    return {"pipeline.md": pipeline_reference(), "policy.md": policy_reference(), "api.md": api_reference()}


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
