"""First run: `privgov demo` ends with a token and three commands that work as printed, and the
example it runs ships inside the wheel (with the LICENSE that pyproject declares)."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from governance.cli import main
from tests.conftest import REPO

EXAMPLE_FILES = ["governance/demo/examples/clinic/pipeline.yaml", "governance/demo/examples/clinic/suite.json",
                 "policies/examples/clinic.yaml"]


def test_demo_prints_a_token_and_three_commands_that_work(capsys, tmp_path, monkeypatch) -> None:
    from tests.governance.run.test_runner import small_spec

    root = tmp_path / "ws"
    spec = str(small_spec(tmp_path))
    assert main(["demo", spec, "-w", str(root), "--no-audit"]) == 0
    out = capsys.readouterr().out
    steps = out[out.index("Next steps:"):].splitlines()
    token_file = root / "demo.token"
    assert f"export PRIVGOV_TOKEN=$(cat {token_file})" in "\n".join(steps)
    commands = [shlex.split(ln.split("#")[0]) for ln in steps if ln.strip().startswith("privgov ")]
    assert len(commands) == 3
    monkeypatch.setenv("PRIVGOV_TOKEN", token_file.read_text().strip())
    for argv in commands:  # each works as printed, with the token the lines say how to get
        assert argv[0] == "privgov"
        code = main(argv[1:])
        assert code == 0, (argv, capsys.readouterr().err)
    capsys.readouterr()
    # a second demo on the same workspace uses the saved token; --json gives one document
    monkeypatch.delenv("PRIVGOV_TOKEN")
    assert main(["demo", spec, "-w", str(root), "--no-audit", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["created"] is False and doc["run"]["status"] == "succeeded" and len(doc["next_steps"]) > 3


def test_demo_defaults_to_the_packaged_example() -> None:
    from governance.demo.setup import example_pipeline
    from governance.run.spec import load_pipeline

    path = example_pipeline("clinic")
    assert path.is_relative_to(REPO / "governance" / "demo" / "examples")
    spec = load_pipeline(path)
    assert spec.resolve(spec.policy).resolve() == (REPO / "policies" / "examples" / "clinic.yaml")
    assert spec.resolve(spec.quality.suite).is_file()
    # the repository's examples/clinic is the same file, not a copy that could drift
    assert (REPO / "examples" / "clinic" / "pipeline.yaml").resolve() == path.resolve()


@pytest.mark.slow
def test_wheel_ships_the_examples_and_the_license(tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for pkg in ("governance", "privacy", "training", "policies"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, timeout=300)
    wheel, = (tmp_path / "dist").glob("privgov-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        licence = zf.read(next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))).decode()
    assert set(EXAMPLE_FILES) <= names
    assert "License-Expression: Apache-2.0" in meta
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert licence == (REPO / "LICENSE").read_text()
    # installed, away from the checkout: the demo finds its pipeline, suite and policy in the package
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    probe = ("from governance.demo.setup import example_pipeline\n"
             "from governance.run.spec import load_pipeline\n"
             "p = example_pipeline('clinic'); s = load_pipeline(p)\n"
             "print(p); print(s.resolve(s.policy).resolve()); print(s.resolve(s.quality.suite).resolve())\n")
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(site), "GX_ANALYTICS_ENABLED": "False", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    paths = [Path(p) for p in res.stdout.split()]
    assert all(p.is_file() and p.is_relative_to(site) for p in paths), paths
