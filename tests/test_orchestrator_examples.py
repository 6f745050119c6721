"""examples/airflow and examples/dagster call only what privgov.api offers, and import cleanly.

Why not `pytest.importorskip`: Airflow and Dagster are optional extras that CI does
not install, and a skipped check is no check. So every file is compiled and its use
of the API is checked statically (names in `privgov.api.__all__`, keyword arguments
in the function's signature); then it is imported, with the orchestrator stubbed
only when it is not installed, and with every API function made to fail if called:
parsing a DAG must never touch the workspace.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import runpy
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from privgov import api

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"airflow": ROOT / "examples" / "airflow", "dagster": ROOT / "examples" / "dagster"}
FILES = sorted(p for d in EXAMPLES.values() for p in d.glob("*.py"))
DOCUMENTED = {"open_workspace", "run_pipeline", "read_version", "check_decision", "verify_audit"}


def _api_uses(tree: ast.Module) -> tuple[set[str], list[ast.Call]]:
    """Names the file takes from privgov.api, and its calls of them (``api.f(...)`` or ``f(...)``)."""
    aliases: set[str] = set()   # local names bound to the module privgov.api
    direct: dict[str, str] = {}  # local name -> api name, from `from privgov.api import x as y`
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "privgov":
            aliases |= {a.asname or a.name for a in node.names if a.name == "api"}
        elif isinstance(node, ast.ImportFrom) and node.module in ("privgov.api", "governance.api"):
            direct |= {a.asname or a.name: a.name for a in node.names}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name in ("privgov.api", "governance.api") and a.asname}
    used = set(direct.values())
    calls: list[ast.Call] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used.add(node.attr)
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in aliases) or (
                    isinstance(f, ast.Name) and f.id in direct):
                calls.append(node)
    return used, calls


def _called_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def test_there_is_one_example_per_orchestrator() -> None:
    assert {p.parent.name for p in FILES} == set(EXAMPLES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_uses_only_the_documented_api(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    compile(tree, str(path), "exec")
    used, calls = _api_uses(tree)
    assert used, f"{path.name} does not use privgov.api"
    unknown = sorted(n for n in used if n not in api.__all__ or not hasattr(api, n))
    assert not unknown, f"{path.name} uses names privgov.api does not export: {unknown}"
    for call in calls:
        name = _called_name(call)
        target = getattr(api, name)
        if inspect.isclass(target) and issubclass(target, BaseException):
            continue
        params = inspect.signature(target).parameters
        keywords = {k.arg for k in call.keywords if k.arg}
        assert keywords <= set(params), f"{path.name}:{call.lineno}: {name}() has no {sorted(keywords - set(params))}"
        positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        assert len(call.args) <= len(positional), f"{path.name}:{call.lineno}: too many positional arguments to {name}()"


def test_examples_together_show_every_documented_function() -> None:
    used: set[str] = set()
    for path in FILES:
        used |= _api_uses(ast.parse(path.read_text()))[0]
    assert DOCUMENTED <= used, f"not shown in any example: {sorted(DOCUMENTED - used)}"


class _Anything:
    """Stands in for any orchestrator object: callable, decorates, chains with >>, never runs a task."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> "_Anything":
        return _Anything()

    def __getattr__(self, name: str) -> "_Anything":
        return _Anything()

    def __rshift__(self, other: Any) -> Any:
        return other

    def __rrshift__(self, other: Any) -> "_Anything":
        return self


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()


def _stub(monkeypatch: pytest.MonkeyPatch, top: str, submodules: tuple[str, ...]) -> None:
    monkeypatch.setitem(sys.modules, top, _StubModule(top))
    for sub in submodules:
        monkeypatch.setitem(sys.modules, f"{top}.{sub}", _StubModule(f"{top}.{sub}"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_imports_without_touching_a_workspace(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orchestrator = path.parent.name
    if importlib.util.find_spec(orchestrator) is None:  # optional extra not installed: stub it, do not skip
        _stub(monkeypatch, orchestrator, ("sdk",) if orchestrator == "airflow" else ())

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{path.name} calls privgov.api while being imported")

    for name in DOCUMENTED | {"verify_audit_file"}:
        monkeypatch.setattr(api, name, refuse)
    namespace = runpy.run_path(str(path), run_name=f"example_{orchestrator}")
    assert namespace["api"] is api and namespace["PIPELINE"].is_file()
