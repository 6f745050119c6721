"""Hostile input never ends in a traceback: every loader and CLI command says one line.

Fuzzes the five file loaders (pipeline, policy, policy cases, quality suite, PII
spec) and the four commands that read them with alias bombs, deep nesting,
duplicate keys, wrong types at every level, random and non-UTF-8 bytes, huge
strings, empty files and directories. A loader may accept an input or raise
InputError; nothing else. A command given an invalid file exits 2 with exactly
one ``error:`` line on stderr that names the file.
"""
from __future__ import annotations

import copy
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from governance.cli import main
from governance.run.spec import load_pipeline
from governance.data.quality.suite import load_suite
from policies.casetest import load_cases
from policies.schema import load_policy, load_yaml_file
from privacy.deid.spec import deid_steps_from_yaml
from privacy.errors import InputError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- valid bases to mutate
PIPELINE: dict[str, Any] = {
    "name": "p", "dataset": "ds", "source": {"sample": "clinic", "rows": 10, "seed": 1},
    "row_id": "row_id", "tags": ["phi"], "quality": {"suite": "suite.json", "engine": "fast"},
    "cleaning": [{"step": "trim_whitespace"}],
    "deid": {"direct_identifiers": ["name"], "steps": [{"column": "name", "action": "drop"}]},
    "policy": "policy.yaml", "principal": "demo", "purpose": "research",
    "training": {"target": "y", "epsilon": 1.0, "hidden": [8]},
}
POLICY: dict[str, Any] = {
    "version": 1, "name": "pol", "roles": ["analyst"],
    "grants": [{"id": "g", "roles": ["analyst"], "actions": ["read"], "datasets": ["ds"],
                "purposes": ["research"], "masks": {"email": "drop"},
                "row_filter": {"column": "age", "op": ">=", "value": 18}}],
    "deny": [{"id": "d", "roles": ["analyst"], "actions": ["erase"], "datasets": ["ds"]}],
}
CASES: dict[str, Any] = {
    "defaults": {"principal": "p", "roles": ["analyst"]},
    "cases": [{"name": "c", "action": "read", "dataset": "ds", "purpose": "research", "expect": "allow"}],
}
SUITE: dict[str, Any] = {"name": "s", "expectations": [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min_value": 0, "max_value": 9,
                                                               "mostly": 0.5}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "a", "value_set": ["x", 1]}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "a", "regex": "^x"}},
]}
DEID: dict[str, Any] = {"steps": [
    {"column": "a", "action": "pseudonymize", "length": 16},
    {"column": "n", "action": "generalize", "method": "round", "ndigits": 0},
]}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _wrong_type(value: Any) -> Any:
    """A value of a kind no typed field at this place accepts."""
    if isinstance(value, dict):
        return [1, [2]]
    if isinstance(value, list):
        return 7
    return {"nested": [value]}


@st.composite
def mutated(draw: Any, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with one node replaced by a wrong type, or an unknown key added to a mapping.

    Suite ``kwargs`` are the one open mapping (GX kwargs pass through), so no key is added there."""
    doc = copy.deepcopy(base)
    path = draw(st.sampled_from([p for p in _paths(base) if p]))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    how = draw(st.sampled_from(["wrong_type", "unknown_key"]))
    if how == "unknown_key" and isinstance(parent[path[-1]], dict) and path[-1] != "kwargs":
        parent[path[-1]][draw(st.sampled_from(["zz_unknown", "typo\nkey", "é" * 300]))] = 1
    else:
        parent[path[-1]] = _wrong_type(parent[path[-1]])
    return doc


def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


REGRESSIONS: list[bytes] = [
    _bomb().encode(),                                         # alias bomb: MemoryError on main
    ("x: " + "[" * 5000 + "]" * 5000).encode(),               # deep nesting: RecursionError
    ("x: " + "{a: " * 3000 + "1" + "}" * 3000).encode(),
    b"name: a\nname: b\n",                                    # duplicate key: was accepted silently
    b"a: &a [*a]\n",                                          # recursive alias
    b"",                                                      # empty file
    b"\xff\xfe\x00bad",                                       # not UTF-8
    b"x: 2026-13-45\n",                                       # a date Python cannot build
    ("x: " + "9" * 5000).encode(),                            # integer past Python's digit limit
    ("x: '" + "s" * 3_000_000 + "'").encode(),                # over the size limit
    b"[1, 2, 3]\n",                                           # wrong top-level type
    b"!!python/object/apply:os.system ['true']\n",
    b"\tname: x",                                             # tab indentation
    b"? [a, b]\n: 1\n",                                       # unhashable key
]

hostile_bytes = st.one_of(
    st.sampled_from(REGRESSIONS),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def _yaml_bytes(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8")


def _write(path: Path, data: bytes) -> Path:
    if path.is_dir():
        path.rmdir()
    path.write_bytes(data)
    return path


def _loads_or_input_error(load: Callable[[Path], Any], path: Path) -> None:
    try:
        load(path)
    except InputError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(path) in msg, msg


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with valid companions: data, policy, suite (module-scoped for hypothesis)."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "data.csv").write_text("row_id,a,n\n0,x,1\n1,y,2\n2,,3\n")
    (root / "policy.yaml").write_bytes(_yaml_bytes(POLICY))
    (root / "cases.yaml").write_bytes(_yaml_bytes(CASES))
    (root / "suite.json").write_text(json.dumps(SUITE))
    return root


LOADERS: dict[str, Callable[[Path], Any]] = {
    "pipeline": load_pipeline,
    "policy": load_policy,
    "cases": load_cases,
    "suite": load_suite,
    "deid": lambda p: deid_steps_from_yaml(load_yaml_file(p, "de-identification spec")),
}


def _cli(kind: str, target: Path, box: Path) -> list[str]:
    return {
        "pipeline": ["run", str(target), "--workspace", str(box / "no-ws")],
        "policy": ["policy", "test", str(target), str(box / "cases.yaml")],
        "cases": ["policy", "test", str(box / "policy.yaml"), str(target)],
        "suite": ["quality", "validate", str(box / "data.csv"), "--suite", str(target)],
        "deid": ["pii", "apply", str(box / "data.csv"), "--spec", str(target), "--out", str(box / "out.csv"),
                 "--dataset", "clinic-visits",
                 "--workspace", str(box / "no-ws")],
    }[kind]


def assert_refused(argv: list[str], target: Path) -> None:
    """Exit 2, and stderr is exactly one `error:` line naming ``target``; no exception escapes."""
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main(argv)
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert code == 2, (code, err.getvalue())
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(target) in lines[0], err.getvalue()


# ---------------------------------------------------------------- loaders: accept or InputError
@pytest.mark.parametrize("kind", sorted(LOADERS))
@FUZZ
@given(data=hostile_bytes)
def test_loaders_raise_only_input_error_on_hostile_bytes(box: Path, kind: str, data: bytes) -> None:
    _loads_or_input_error(LOADERS[kind], _write(box / f"fuzz-{kind}", data))


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_loaders_refuse_a_directory(box: Path, kind: str) -> None:
    target = box / f"dir-{kind}"
    target.mkdir(exist_ok=True)
    with pytest.raises(InputError, match="directory"):
        LOADERS[kind](target)


# ---------------------------------------------------------------- CLI: exit 2, one line, names the file
BASES = {"pipeline": PIPELINE, "policy": POLICY, "cases": CASES, "deid": DEID}


@pytest.mark.parametrize("kind", ["pipeline", "policy", "cases", "deid", "suite"])
@FUZZ
@given(data=st.data())
def test_cli_refuses_wrong_types_at_every_level(box: Path, kind: str, data: st.DataObject) -> None:
    if kind == "suite":
        doc = data.draw(mutated(SUITE))
        raw = json.dumps(doc).encode()
    else:
        raw = _yaml_bytes(data.draw(mutated(BASES[kind])))
    target = _write(box / f"cli-{kind}.{'json' if kind == 'suite' else 'yaml'}", raw)
    assert_refused(_cli(kind, target, box), target)


@pytest.mark.parametrize("kind", ["pipeline", "policy", "cases", "deid", "suite"])
@pytest.mark.parametrize("index", range(len(REGRESSIONS)))
def test_cli_refuses_the_regression_inputs(box: Path, kind: str, index: int) -> None:
    target = _write(box / f"cli-regression-{kind}", REGRESSIONS[index])
    assert_refused(_cli(kind, target, box), target)


@pytest.mark.parametrize("kind", ["pipeline", "policy", "cases", "deid", "suite"])
@FUZZ
@given(data=st.binary(min_size=1, max_size=100).map(lambda b: b"\xff" + b)
       | st.text(min_size=1, max_size=100).map(lambda t: ("{" + t).encode("utf-8", "surrogatepass")))
@example(data=b"")
def test_cli_refuses_hostile_files(box: Path, kind: str, data: bytes) -> None:
    target = _write(box / f"cli-raw-{kind}", data)
    assert_refused(_cli(kind, target, box), target)


@pytest.mark.parametrize(("steps", "pattern"), [
    ("- {column: a, action: [drop]}\n", r":1: steps\[0\]\.action: expected one of drop"),
    ("steps:\n  - {column: a, action: drop}\n  - {column: n, action: generalize, method: {x: 1}}\n",
     r":3: steps\[1\]\.method: expected one of age_band"),
    ("steps:\n  - column: n\n    action: generalize\n    method: age_band\n    width: wide\n",
     r":5: steps\[0\]\.width: Input should be a valid integer"),
    ("- {column: a, action: drop, colour: red}\n", r":1: steps\[0\]\.colour: unknown key"),
    ("- drop\n", r":1: steps\[0\]: expected a mapping"),
    ("steps: [{column: a, action: drop}]\nextra: 1\n", r":2: unknown key 'extra'"),
    ("{column: a, action: drop}\n", r": missing key `steps`"),
])
def test_cli_pii_spec_errors_name_step_and_key(box: Path, steps: str, pattern: str) -> None:
    target = _write(box / "spec.yaml", steps.encode())
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main(_cli("deid", target, box))
    assert code == 2, err.getvalue()
    line, = err.getvalue().splitlines()
    assert re.search("^error: " + re.escape(str(target)) + pattern, line), line


def test_cli_suite_with_duplicate_json_keys_is_refused(box: Path) -> None:
    target = box / "dup.json"
    target.write_text('{"name": "s", "expectations": [], "name": "t"}')
    assert_refused(_cli("suite", target, box), target)


def test_cli_pipeline_deid_step_error_names_the_line(box: Path) -> None:
    doc = copy.deepcopy(PIPELINE)
    doc["deid"]["steps"].append({"column": "age", "action": "generalize", "method": "age_band", "width": 0})
    target = _write(box / "pipe.yaml", yaml.safe_dump(doc, sort_keys=False).encode())
    line_no = next(i for i, ln in enumerate(target.read_text().splitlines(), 1) if "age_band" in ln or "column: age" in ln)
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main(_cli("pipeline", target, box))
    assert code == 2
    line, = err.getvalue().splitlines()
    assert f"{target}: line {line_no}: key `deid.steps.1`" in line and "width" in line, line


@pytest.mark.parametrize("kind", ["pipeline", "policy", "cases", "deid", "suite"])
def test_cli_refuses_a_directory(box: Path, kind: str) -> None:
    target = box / f"cli-dir-{kind}"
    target.mkdir(exist_ok=True)
    assert_refused(_cli(kind, target, box), target)


SUITE_REGRESSIONS: list[tuple[Any, str]] = [  # (expectation, regex after "FILE: ")
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min_value": "zero"}},
     r"expectations\[0\]\.kwargs\.min_value: expected a number$"),
    ({"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "a", "value_set": "xy"}},
     r"expectations\[0\]\.kwargs\.value_set: expected a list"),
    ({"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "a", "value_set": [[1]]}},
     r"expectations\[0\]\.kwargs\.value_set\[0\]: expected a list"),
    ({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "a", "regex": "("}},
     r"expectations\[0\]\.kwargs\.regex: regular expression does not compile"),
    ({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "a"}},
     r"expectations\[0\]\.kwargs\.regex: required"),
    ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": 3}},
     r"expectations\[0\]\.kwargs\.column: expected a column name"),
    ({"type": "expect_column_values_to_not_be_null", "kwargs": {}},
     r"expectations\[0\]\.kwargs\.column: required"),
    ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a", "mostly": 2}},
     r"expectations\[0\]\.kwargs\.mostly: expected a number between 0 and 1"),
    ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "n"}},
     r"expectations\[0\]\.kwargs\.min_value: .* needs min_value or max_value"),
    ({"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": "a"}},
     r"expectations\[0\]\.kwargs\.column_list: expected a non-empty list"),
    ({"type": "expect_table_row_count_to_equal", "kwargs": {"value": "3"}},
     r"expectations\[0\]\.kwargs\.value: expected a whole number"),
    ({"type": ["expect_column_to_exist"], "kwargs": {"column": "a"}},
     r"expectations\[0\]\.type: expectation 0 has unknown type 'list'"),
]


@pytest.mark.parametrize(("exp", "pattern"), SUITE_REGRESSIONS)
def test_cli_suite_errors_name_the_kwarg(box: Path, exp: Any, pattern: str) -> None:
    target = box / "suite-regression.json"
    target.write_text(json.dumps({"name": "s", "expectations": [exp]}))
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        code = main(_cli("suite", target, box))
    assert code == 2, err.getvalue()
    line, = err.getvalue().splitlines()
    assert re.search("^error: " + re.escape(str(target)) + ": " + pattern, line), line


@pytest.mark.parametrize(("change", "pattern"), [
    ({"cleaning": [{"step": ["trim_whitespace"]}]}, r"key `cleaning`: .*step 0: expected a mapping with string keys"),
    ({"cleaning": [{"step": "impute", "colums": ["a"]}]}, r"key `cleaning`: .*unknown key 'colums'"),
    ({"training": {"target": "y", "epsilon": 1.0, "options": {"nope": 1}}},
     r"key `training.options`: .*unknown option\(s\) nope"),
    ({"training": {"target": "y", "epsilon": 1.0, "options": {"epochs": 3}}},
     r"key `training.options`: .*unknown option\(s\) epochs"),  # declared in the block itself
    ({"source": {"sample": "clinic", "seed": -1}}, r"key `source.seed`"),
    ({"source": {"sample": "clinic", "rows": 10**12}}, r"key `source.rows`"),
    ({"name": "two\nlines"}, r"key `name`"),
])
def test_pipeline_refuses_what_would_fail_later_in_the_run(box: Path, change: dict, pattern: str) -> None:
    target = _write(box / "pipe-later.yaml", _yaml_bytes({**PIPELINE, **change}))
    with pytest.raises(InputError) as exc:
        load_pipeline(target)
    msg = str(exc.value)
    assert "\n" not in msg and re.search("^" + re.escape(str(target)) + ": line \\d+: " + pattern, msg), msg


def test_pipeline_paths_with_nul_bytes_are_refused(box: Path) -> None:
    spec = load_pipeline(_write(box / "pipe-nul.yaml", _yaml_bytes({**PIPELINE, "policy": "a\0b.yaml"})))
    with pytest.raises(InputError, match="NUL byte"):
        spec.resolve(spec.policy)
    with pytest.raises(InputError, match="not a valid path"):
        load_policy(Path("a\0b.yaml"))
