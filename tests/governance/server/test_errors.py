"""The error table (governance/server/errors.py) on an app in process: each privgov error gets its
status and one JSON shape, and a bug answers 500 without its message, traceback or a path."""
from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from governance.server import errors
from privacy.errors import (
    AccessDenied, BudgetExceeded, InputError, IntegrityFailure, QualityGateFailed, WorkspaceError,
)
from tests.conftest import REPO

CASES = [(InputError, 400, "bad_input"), (AccessDenied, 403, "access_denied"),
         (BudgetExceeded, 409, "budget_exceeded"), (IntegrityFailure, 500, "integrity_failure"),
         (QualityGateFailed, 422, "quality_gate_failed"), (WorkspaceError, 503, "workspace_unavailable")]


def _app() -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/raise/{i}")
    def boom(i: int) -> None:
        raise CASES[i][0](f"field `x`: expected y (case {i})")

    @app.get("/bug")
    def bug() -> None:
        raise KeyError("/srv/privgov/secret-path value=4111111111111111")

    return app


@pytest.mark.parametrize("i", range(len(CASES)))
def test_privgov_errors_map_to_their_status(i: int) -> None:
    _, status, kind = CASES[i]
    r = TestClient(_app()).get(f"/raise/{i}")
    assert r.status_code == status
    assert r.json() == {"error": {"type": kind, "message": f"field `x`: expected y (case {i})"}}


def test_a_bug_is_500_without_message_or_traceback() -> None:
    r = TestClient(_app(), raise_server_exceptions=False).get("/bug")
    assert r.status_code == 500 and r.json()["error"]["type"] == "internal_error"
    assert "secret-path" not in r.text and "4111" not in r.text and "Traceback" not in r.text


def test_help_imports_neither_fastapi_nor_uvicorn() -> None:
    code = ("import sys\nfrom governance.cli import main\nrc = main(['--help'])\n"
            "print('LOADED', sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'torch', 'great_expectations') "
            "if m in sys.modules), rc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert "LOADED [] 0" in out, out


def test_serve_refuses_a_missing_workspace_before_listening(tmp_path, capsys) -> None:
    from governance.cli import main

    assert main(["serve", "--workspace", str(tmp_path / "none"), "--port", "1"]) == 2
    assert "privgov init" in capsys.readouterr().err
    assert main(["serve", "--workspace", str(tmp_path / "none"), "--rate", "0"]) == 2
    assert "error: --rate: Input should be greater than 0" in capsys.readouterr().err


def test_settings_from_the_environment_are_validated(monkeypatch) -> None:
    from governance.server.settings import SETTINGS_ENV, ServerSettings

    monkeypatch.setenv(SETTINGS_ENV, '{"rate_burst": 0}')
    with pytest.raises(InputError, match=r"rate_burst: Input should be greater than or equal to 1"):
        ServerSettings.from_env()
    monkeypatch.setenv(SETTINGS_ENV, "{nope")
    with pytest.raises(InputError, match="expected the JSON of ServerSettings"):
        ServerSettings.from_env()
    monkeypatch.setenv(SETTINGS_ENV, ServerSettings(rate_burst=3).to_env())
    assert ServerSettings.from_env().rate_burst == 3
