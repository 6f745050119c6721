"""Dependencies flow one way: governance → policies, privacy, training; training → privacy; and
inside governance/ along the GUIDE §1 table, with no cycles and no module over 400 lines."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "privacy": {"governance", "training", "policies"},
    "training": {"governance", "policies"},
    "policies": {"governance", "training"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        hit = _imports(path) & FORBIDDEN[package]
        if hit:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, "layering violated: " + "; ".join(bad)


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from governance.cli import main\n"
        "rc = main(['--help'])\n"
        "heavy = [m for m in ('torch', 'great_expectations', 'opacus', 'pandas', 'matplotlib', 'pyspark') if m in sys.modules]\n"
        "print('HEAVY', heavy, rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "HEAVY [] 0" in out, out


# --------------------------------------------------------------------------- inside governance/
# GUIDE §1: one sub-package per concern, arrows pointing one way. Each unit of governance/
# (a sub-package, or workspace.py) names what it may import from the rest of governance/;
# its own modules and the shared foundations (errors, yaml_source) are always allowed.
# An entry is a dotted prefix under governance: "run.spec" allows governance.run.spec only.
GOVERNANCE = ROOT / "governance"
FOUNDATIONS = ("errors", "yaml_source")
EVERYTHING = ("storage", "evidence", "access", "data", "run", "demo", "workspace", "cli")
ALLOWED_INSIDE = {
    "storage": (),
    "evidence": ("storage",),
    "access": ("storage", "evidence"),
    "data": ("storage",),
    "run": tuple(u for u in EVERYTHING if u != "cli"),
    "demo": ("data", "storage", "access", "run.spec", "workspace"),
    "cli": (*EVERYTHING, "server"),
    "server": ("api", "access", "evidence", "run", "storage", "workspace"),  # run: jobs and predictions (GUIDE §1)
    "workspace": ("storage", "evidence"),
    "docs_gen": ("run.spec", "api", "data.cleaning"),
    "api": ("workspace", "run", "access", "evidence", "storage"),
    "errors": (),
    "yaml_source": (),
    "__init__": (),
}
MAX_MODULE_LINES = 400


def _unit(path: Path) -> str:
    """`storage` for governance/storage/..., `workspace` for governance/workspace.py."""
    parts = path.relative_to(GOVERNANCE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted target) of every import that runs, at any depth; a ``from m import x``
    yields ``m.x`` (x may be a module). Imports under ``if TYPE_CHECKING:`` are skipped."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.extend((node.lineno, f"{base}.{a.name}") for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _governance_modules() -> list[Path]:
    return sorted(GOVERNANCE.rglob("*.py"))


def test_every_governance_unit_has_a_layering_rule() -> None:
    units = {_unit(p) for p in _governance_modules()}
    assert units <= set(ALLOWED_INSIDE), f"add a rule to ALLOWED_INSIDE for {sorted(units - set(ALLOWED_INSIDE))}"


@pytest.mark.parametrize("unit", sorted(ALLOWED_INSIDE))
def test_governance_sub_packages_import_only_what_the_guide_allows(unit: str) -> None:
    allowed = (unit, *FOUNDATIONS, *ALLOWED_INSIDE[unit])
    bad = []
    for path in _governance_modules():
        if _unit(path) != unit:
            continue
        for line, target in _runtime_imports(path):
            if target != "governance" and not target.startswith("governance."):
                continue
            inside = target.removeprefix("governance").removeprefix(".")
            if not inside or not any(inside == a or inside.startswith(a + ".") for a in allowed):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not bad, f"{unit} may import only {sorted(ALLOWED_INSIDE[unit])} inside governance: " + "; ".join(bad)


def test_no_governance_module_over_the_line_limit() -> None:
    long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in _governance_modules()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"split by concern, {MAX_MODULE_LINES} lines at most: " + "; ".join(long)


def _import_graph() -> dict[str, set[str]]:
    """governance module -> the governance modules it imports at run time."""
    modules = {_module_name(p): p for p in _governance_modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for _, target in _runtime_imports(path):
            while target and target not in modules:  # `from m import name`: the module is m
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def test_no_import_cycles_inside_governance() -> None:
    """GUIDE §1: arrows point one way; e.g. cli modules never import each other in a cycle."""
    graph = _import_graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []
    cycles: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [dep]))
            elif dep not in state:
                walk(dep)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert not cycles, "import cycles: " + "; ".join(cycles)
