"""A live `privgov serve` for the server tests: one workspace and one uvicorn process per session.

The workspace holds the clinic policy bound to `clinic-visits` (as an admin binds
it), one principal per role with a token, an expired and a revoked token, and two
stored versions written through the catalog (encrypted like any ingest): a data
version with raw identifiers (`PLAIN`, so a test can look for every raw value in
a download) and a quarantine version. The server is started the way a user
starts it (`python -m governance.cli serve`) on a free port of 127.0.0.1.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.conftest import REPO, new_workspace
from tests.governance.access.conftest import PEOPLE as ACCESS_PEOPLE
from tests.governance.access.conftest import events_after, head  # noqa: F401  (re-exported for the tests)

PEOPLE = {
    **ACCESS_PEOPLE,  # admin, demo, ana (analyst), dora (data-engineer), mallory (contractor)
    "audrey": ("audrey", ["auditor"]),
    "flood": ("flood", ["analyst"]),  # only the rate-limit test spends this token's bucket
    "gone": ("gone", ["analyst"]),
    "late": ("late", ["analyst"]),
}
UNKNOWN = "clinic-visitz"  # as long as DATASET, so a denial for it must be byte-identical after renaming
DATASET = "clinic-visits"
RATE, BURST = 5.0, 60  # generous enough that the shared tokens never run dry; `flood` spends its own


def plain_frame(n: int = 60) -> pd.DataFrame:
    """Visits with raw identifiers; patient i has the e-mail, phone and ZIP below."""
    ages = ["0-19", "20-39", "40-59", "60-79"]
    return pd.DataFrame({
        "row_id": range(n),
        "patient_id": [f"P{100000 + i % 40}" for i in range(n)],
        "email": [f"person{i:03d}@example.org" for i in range(n)],
        "phone": [f"+1-555-01{i:02d}-{7000 + i}" for i in range(n)],
        "zip": [f"{94100 + i:05d}" for i in range(n)],
        "age": [ages[i % 4] for i in range(n)],
        "bmi": [20.0 + i / 10 for i in range(n)],
    })


PLAIN = plain_frame()


@dataclass
class Live:
    """A running server: its base URL, the tokens by key, the workspace and its version numbers."""

    url: str
    tokens: dict[str, str]
    ws: object
    root: Path
    data_version: int
    quarantine_version: int
    proc: subprocess.Popen

    def client(self, token_key: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[token_key]}"} if token_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def store_versions(ws) -> tuple[int, int]:
    """Write PLAIN as a data version and a few of its rows as a quarantine version."""
    from governance.storage import catalog

    with ws.session() as s:
        ds = catalog.find_dataset(s, DATASET)
        data = catalog.write_version(ws, s, ds, PLAIN, kind="data", validation_status="passed")
        quarantine = catalog.write_version(ws, s, ds, PLAIN.head(5), kind="quarantine", parent_id=data.id)
        return int(data.version), int(quarantine.version)


def spoil_tokens(ws, tokens: dict[str, str]) -> None:
    """`gone`'s token revoked, `late`'s expired (moved into the past, as time would)."""
    from governance.access.identity import revoke_token, token_id_of
    from governance.storage.principals import ApiToken

    with ws.session() as s:
        revoke_token(s, tokens["gone"])
        row = s.query(ApiToken).filter(ApiToken.token_id == token_id_of(tokens["late"])).one()
        row.expires_at = row.created_at - dt.timedelta(seconds=1)


def start_server(root: Path, *extra: str, scheme: str = "http", verify=True) -> tuple[str, subprocess.Popen]:
    """`python -m governance.cli serve` on a free port; returns once /healthz answers."""
    port = free_port()
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "governance.cli", "serve", "--workspace", str(root),
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"privgov serve exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                return url, proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError("privgov serve did not answer /healthz within 90 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def build(root: Path, db_url: str | None = None) -> tuple[object, dict[str, str], int, int]:
    ws, tokens = new_workspace(root, PEOPLE, db_url=db_url)
    data_v, quarantine_v = store_versions(ws)
    spoil_tokens(ws, tokens)
    return ws, tokens, data_v, quarantine_v


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Live:
    """The session's server on a SQLite workspace."""
    root = tmp_path_factory.mktemp("server") / "ws"
    ws, tokens, data_v, quarantine_v = build(root)
    url, proc = start_server(root, "--rate", str(RATE), "--burst", str(BURST), "--max-body-bytes", "4096",
                             "--auth-failures-per-minute", "600")
    yield Live(url, tokens, ws, root, data_v, quarantine_v, proc)
    stop_server(proc)



def same_denial(client, path: str) -> tuple:
    """(response for DATASET, response for UNKNOWN) of GET `path` (with `{}` for the name); asserts both
    are 403 and byte-identical once the name the caller sent is swapped."""
    forbidden = client.get(path.format(DATASET))
    unknown = client.get(path.format(UNKNOWN))
    assert forbidden.status_code == unknown.status_code == 403, (forbidden.text, unknown.text)
    assert forbidden.content.replace(DATASET.encode(), UNKNOWN.encode()) == unknown.content
    assert forbidden.headers.keys() == unknown.headers.keys()
    return forbidden, unknown


# Jobs and predictions (tests/governance/server/jobs_live.py): one server that runs jobs, shared by test_runs and test_models.
from tests.governance.server.jobs_live import jobs_live  # noqa: E402,F401
