"""A live server that runs jobs: its own workspace, a data directory, and one finished training job.

Shared (session scope) by test_runs.py and test_models.py: the finished job's
run is the model the prediction tests score with."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.governance.job_pipeline import job_yaml, make_data_dir
from tests.governance.server.conftest import PEOPLE, free_port, start_server, stop_server  # noqa: F401
from tests.conftest import new_workspace


@dataclass
class JobsLive:
    url: str
    tokens: dict[str, str]
    ws: object
    root: Path
    data_dir: Path
    proc: object
    job: dict  # the finished training job

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def poll(client: httpx.Client, job: str, until=("succeeded", "failed", "cancelled", "interrupted"),
         timeout: float = 400) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/runs/{job}")
        assert r.status_code == 200, r.text
        if r.json()["state"] in until:
            return r.json()
        time.sleep(0.25)
    raise AssertionError(f"job {job} not {until} after {timeout:g} s: {r.json()}")


def serve_jobs(root: Path, data_dir: Path):
    return start_server(root, "--data-dir", str(data_dir), "--rate", "200", "--burst", "400")


@pytest.fixture(scope="session")
def jobs_live(tmp_path_factory) -> JobsLive:
    tmp = tmp_path_factory.mktemp("jobs-server")
    ws, tokens = new_workspace(tmp / "ws", PEOPLE)
    data_dir = make_data_dir(tmp / "data")
    url, proc = serve_jobs(ws.root, data_dir)
    live = JobsLive(url, tokens, ws, ws.root, data_dir, proc, {})
    with live.client("demo") as c:
        r = c.post("/v1/runs", json={"pipeline": job_yaml()})
        assert r.status_code == 202, r.text
        live.job = poll(c, r.json()["job"])
    yield live
    stop_server(proc)
