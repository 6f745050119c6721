"""docs/pipeline.md and docs/policy.md are generated from the pydantic models and kept current."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Iterator

import pytest
from pydantic import BaseModel, Field, TypeAdapter, create_model

from governance.docs_gen import main, pages, pipeline_documents
from governance.run.spec import PipelineSpec, TrainingSpec
from policies.docs_gen import UNDOCUMENTED, nested_models, policy_documents, render
from policies.schema import Policy

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"pipeline.md": PipelineSpec, "policy.md": Policy}
GENERATED = (*MODELS, "api.md")


def _dotted_fields(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, type[BaseModel], str]]:
    """(dotted path, owning model, field name) of every YAML key, independently of the generator's walk."""
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        full = f"{path}.{name}" if path else name
        yield full, model, name
        seen: set[type[BaseModel]] = set()
        for suffix, sub in nested_models(info.annotation):
            if sub not in seen:
                seen.add(sub)
                yield from _dotted_fields(sub, full + suffix)


def test_checked_in_pages_are_current(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    stale = [name for name in GENERATED
             if not (ROOT / "docs" / name).is_file()
             or (ROOT / "docs" / name).read_text(encoding="utf-8") != (tmp_path / name).read_text(encoding="utf-8")]
    assert not stale, f"docs/{', docs/'.join(stale)} out of date with the pydantic models: run `make docs`"


@pytest.mark.parametrize("page", sorted(MODELS))
def test_every_field_has_a_row_with_type_default_description_and_example(page: str) -> None:
    text = pages()[page]
    rows = {line.split("|")[1].strip().strip("`"): line for line in text.splitlines() if line.startswith("| `")}
    missing, bare = [], []
    for path, _, _ in _dotted_fields(MODELS[page]):
        if path not in rows:
            missing.append(path)
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", rows[path])[1:-1]]  # `\|` is a pipe inside a cell
        assert len(cells) == 5, rows[path]
        _, type_, default, description, example = cells
        if not (type_ and default and example) or UNDOCUMENTED in description:
            bare.append(path)
    assert not missing, f"{page}: fields without a row: {missing}"
    assert not bare, f"{page}: rows without type/default/example or description (add Field(description=...)): {bare}"


def test_a_field_added_to_a_model_appears_without_touching_the_generator() -> None:
    extended = create_model(
        "TrainingSpecPlus", __base__=TrainingSpec,
        warmup_steps=(Annotated[int, Field(ge=0, description="Steps of learning-rate warm-up.")], 7),
    )
    text = render("t", "", extended)
    row = next(line for line in text.splitlines() if line.startswith("| `warmup_steps`"))
    assert "integer" in row and "`7`" in row and "Steps of learning-rate warm-up. (>= 0)" in row


def test_examples_are_values_the_models_accept() -> None:
    """Declared `examples=` must validate against their field's type and constraints."""
    bad = []
    for model in MODELS.values():
        for path, owner, name in _dotted_fields(model):
            info = owner.model_fields[name]
            for example in info.examples or []:
                try:
                    kind = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
                    TypeAdapter(kind).validate_python(example)
                except Exception as exc:  # noqa: BLE001 - reported below with the path
                    bad.append(f"{path}: {example!r} ({type(exc).__name__})")
    assert not bad, bad


def test_example_files_the_pages_quote_are_the_shipped_ones() -> None:
    pipelines: list[Any] = pipeline_documents()
    policies: list[Any] = policy_documents()
    assert {d["name"] for d in pipelines} >= {"clinic-readmission", "adult-income"}
    assert {d["name"] for d in policies} >= {"clinic", "adult"}
    pipeline_page = pages()["pipeline.md"]
    assert "`readmitted_30d`" in pipeline_page and "`../../policies/examples/adult.yaml`" in pipeline_page


def test_policy_page_renders_without_importing_governance() -> None:
    code = ("import sys\nfrom policies.docs_gen import policy_reference\ntext = policy_reference()\n"
            "print(len(text) > 1000, sorted(m for m in sys.modules if m.split('.')[0] == 'governance'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "True []", out


def test_every_cleaning_and_deid_step_kind_is_documented_with_its_parameters() -> None:
    from typing import get_args

    from governance.data.cleaning import step_classes
    from privacy.deid.transforms import Spec

    page = pages()["pipeline.md"]
    assert UNDOCUMENTED not in page, "a step parameter lacks Field(description=...)"
    for name, cls in step_classes().items():
        assert f"### `step: {name}`" in page, name
        for param in cls.Params.model_fields:
            assert f"| `cleaning[].{param}` |" in page, (name, param)
    for model in get_args(Spec):
        tag = ", ".join(f"{k}: {get_args(model.model_fields[k].annotation)[0]}" for k in ("action", "method")
                        if k in model.model_fields)
        assert f"### `{tag}`" in page, tag
        for param in model.model_fields:
            assert f"| `deid.steps[].{param}` |" in page, (tag, param)
