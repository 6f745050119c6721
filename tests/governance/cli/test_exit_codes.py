"""The documented exit codes, one real situation each: 0 ok, 1 validation failed, 2 bad input,
3 refused by policy or budget, 4 integrity failure; never a traceback."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from governance.cli import main
from governance.cli.common import ExitCode
from privacy import errors
from tests.conftest import REPO

POLICIES = REPO / "policies" / "examples"
SUITE = REPO / "governance" / "demo" / "examples" / "clinic" / "suite.json"


def call(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err
    return lines[-1]


def test_error_classes_carry_the_documented_codes() -> None:
    assert [c.value for c in (ExitCode.OK, ExitCode.VALIDATION_FAILED, ExitCode.BAD_INPUT, ExitCode.REFUSED,
                              ExitCode.INTEGRITY)] == [0, 1, 2, 3, 4]
    assert errors.QualityGateFailed.exit_code == ExitCode.VALIDATION_FAILED
    assert errors.InputError.exit_code == errors.WorkspaceError.exit_code == ExitCode.BAD_INPUT
    assert errors.AccessDenied.exit_code == errors.BudgetExceeded.exit_code == ExitCode.REFUSED
    assert errors.IntegrityFailure.exit_code == ExitCode.INTEGRITY


def test_docs_list_every_exit_code() -> None:
    doc = (REPO / "docs" / "cli.md").read_text()
    for code in ExitCode:
        assert re.search(rf"^\|\s*{code.value}\s*\|", doc, re.M), f"docs/cli.md: no row for exit {code.value}"


def test_0_ok_and_1_validation_failed(capsys, tmp_path) -> None:
    assert call(capsys, "policy", "test", str(POLICIES / "clinic.yaml"), str(POLICIES / "clinic_cases.yaml"))[0] == 0
    wrong = tmp_path / "cases.yaml"  # a contractor on PHI is denied; this table expects allow
    wrong.write_text("cases:\n  - name: contractor reads phi\n    principal: c\n    roles: [contractor]\n"
                     "    action: read_masked\n    dataset: clinic-visits\n    tags: [phi]\n"
                     "    purpose: quality-review\n    expect: allow\n")
    code, out, _ = call(capsys, "policy", "test", str(POLICIES / "clinic.yaml"), str(wrong))
    assert code == ExitCode.VALIDATION_FAILED and "FAIL" in out
    from governance.demo.sample_data import write_clinic

    raw = write_clinic(tmp_path / "visits.csv", 200, seed=1)  # the raw sample carries planted dirt
    assert call(capsys, "quality", "validate", str(raw), "--suite", str(SUITE))[0] == ExitCode.VALIDATION_FAILED


@pytest.mark.parametrize("args", [
    ("dataset", "list", "--bogus"),                       # usage error (click)
    ("pii", "scan", "{tmp}/missing.csv"),                 # a file that is not there
    ("dataset", "list", "-w", "{tmp}/no-workspace"),      # no workspace
    ("sample", "clinic", "--rows", "5", "--out", "/proc/no/such/dir.csv"),  # an OSError, not a traceback
])
def test_2_bad_input(capsys, tmp_path, args) -> None:
    code, out, err = call(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == ExitCode.BAD_INPUT and out == ""
    if args[-1] != "--bogus":
        one_error_line(err)


def test_2_init_on_an_existing_workspace_says_how_to_go_on(capsys, tmp_path) -> None:
    w = str(tmp_path / "ws")
    assert call(capsys, "init", "-w", w)[0] == 0
    (tmp_path / "ws" / "demo.token").write_text("pgv_x\n")
    code, _, err = call(capsys, "init", "-w", w)
    assert code == ExitCode.BAD_INPUT
    line = one_error_line(err)
    assert "already exists" in line and "--token" in line and "--workspace" in line and "remove" in line
    assert str(tmp_path / "ws" / "demo.token") in line  # where the demo keeps its token


@pytest.fixture
def stored(workspace, tmp_path):
    """The tests/conftest.py workspace after one governed run without training."""
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from tests.governance.run.test_runner import small_spec

    ws, tokens = workspace
    summary = run_pipeline(ws, load_pipeline(small_spec(tmp_path, training=None)), tokens["demo"])
    return ws, tokens, summary


def test_3_refused_by_policy_and_by_budget(capsys, stored, tmp_path) -> None:
    from tests.governance.run.test_runner import small_spec

    ws, tokens, _ = stored
    w = ["-w", str(ws.root)]
    code, _, err = call(capsys, "dataset", "export", "clinic-visits", "--purpose", "quality-review", "--out",
                        str(tmp_path / "x.csv"), *w, "--token", tokens["mallory"])
    assert code == ExitCode.REFUSED and not (tmp_path / "x.csv").exists()
    one_error_line(err)
    code, _, err = call(capsys, "dataset", "export", "clinic-visits", "--purpose", "quality-review", "--out",
                        str(tmp_path / "x.csv"), *w, "--token", "pgv_0000000000000000_forged")
    assert code == ExitCode.REFUSED and not (tmp_path / "x.csv").exists()
    over = small_spec(tmp_path, **{"training.epsilon": 2.95})  # composed cost above the cap of 3
    code, _, err = call(capsys, "run", str(over), *w, "--token", tokens["demo"], "--json")
    assert code == ExitCode.REFUSED and "budget" in one_error_line(err)


def test_4_integrity_failure_on_tampered_ciphertext(capsys, stored) -> None:
    ws, tokens, summary = stored
    for blob in (ws.root / "objects").rglob("*"):
        if blob.is_file():
            data = bytearray(blob.read_bytes())
            data[len(data) // 2] ^= 0x01
            blob.write_bytes(bytes(data))
    code, out, err = call(capsys, "quality", "validate", f"dataset:clinic-visits@{summary.version}", "--suite",
                          str(SUITE), "-w", str(ws.root), "--token", tokens["demo"], "--json")
    assert code == ExitCode.INTEGRITY and out == ""
    one_error_line(err)
