"""The server benchmark runs end to end at a small size: a real `privgov serve` on SQLite and on
PostgreSQL, every answered decision counted in the audit log, the engine figure beside it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # two servers and a PostgreSQL cluster: ~1 min on a busy 2-core machine


def test_server_benchmark_small_run_counts_every_audit_event(tmp_path) -> None:
    env = {**os.environ, "PRIVGOV_BENCH_RESULTS": str(tmp_path), "GX_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "benchmarks/server.py", "--requests", "100", "--clients", "8", "--smoke"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((tmp_path / "server.json").read_text())
    assert {"machine", "versions", "setup", "goal", "goal_met", "rows", "load_average_1_5_15"} <= set(data)
    assert isinstance(data["goal_met"], bool) and data["versions"]["uvicorn"] != "not installed"
    rows = data["rows"]
    assert [(r["backend"], r["mode"].split()[0]) for r in rows] == [
        ("sqlite", "in-process"), ("sqlite", "serve"), ("postgresql", "in-process"), ("postgresql", "serve")]
    for r in rows:
        assert r["answered"] + r.get("transport_errors", 0) + r.get("errors", 0) == 100
        assert r["answered"] >= 90, r  # a few keep-alive races at most, never a refusal
        assert r["audit_rows"] == r["answered"] and r["lost_audit_events"] == 0, r
        assert r["audit_chain_verifies"] is True
        assert r["decisions_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"]
    http = [r for r in rows if r["mode"].startswith("serve")]
    assert all(set(r["statuses"]) == {"200"} and r["cpu_s"]["server"] > 0 and r["cpu_s"]["client"] > 0 for r in http)
    assert http[1]["cpu_s"]["database"] > 0  # PostgreSQL backends' CPU is measured too
