"""`mypy --strict` holds for policies/ and privacy/ (issue 13: first-run friction).

Why a test: the two packages below governance are the ones other code builds on
(the decision function, the budget ledger, de-identification); their annotations are
their contract. Running mypy through its API inside the suite makes `make test` fail
on the first untyped function or wrong Optional, instead of leaving it to review."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("policies", "privacy")


@pytest.mark.slow
def test_mypy_strict_passes_on_policies_and_privacy() -> None:
    from mypy import api

    stdout, stderr, status = api.run([
        "--strict", "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache" / "strict"),  # one cache per test: xdist may run both at once
        *(str(ROOT / package) for package in CHECKED),
    ])
    assert status == 0 and "Success: no issues found" in stdout, f"mypy --strict failed:\n{stdout}{stderr}"
    checked = int(stdout.split("in ")[-1].split()[0])
    assert checked >= 15, f"mypy checked only {checked} files: {stdout}"


def test_mypy_config_is_strict_and_names_no_blanket_ignore() -> None:
    """The config turns strict on for everything it checks; no module skips errors wholesale."""
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert cfg["strict"] is True
    for override in cfg.get("overrides", []):
        assert not override.get("ignore_errors"), f"ignore_errors is not allowed: {override}"
    ignores = [f"{p.relative_to(ROOT)}:{i}" for package in CHECKED for p in sorted((ROOT / package).rglob("*.py"))
               for i, line in enumerate(p.read_text().splitlines(), 1) if "type: ignore" in line and "[" not in line]
    assert not ignores, f"bare `# type: ignore` (name the error code, fix the type instead): {ignores}"


@pytest.mark.slow
def test_the_python_api_and_the_orchestrator_examples_type_check() -> None:
    """privgov.api ships py.typed: its own annotations must hold under --strict, and the Airflow/Dagster
    examples must use it with the right types (only their orchestrators' decorators are untyped here)."""
    from mypy import api

    stdout, stderr, status = api.run([
        "--strict", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache" / "api"),
        "--follow-imports=silent", "--disable-error-code=untyped-decorator",
        str(ROOT / "governance" / "api.py"), str(ROOT / "privgov"),
        str(ROOT / "examples" / "airflow"), str(ROOT / "examples" / "dagster"),
    ])
    assert status == 0 and "Success: no issues found" in stdout, f"mypy --strict failed:\n{stdout}{stderr}"
