"""The streaming benchmark runs end to end at 20k rows and writes every figure the goals need."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_streaming_quick_run_writes_side_by_side_figures(tmp_path) -> None:
    env = {**os.environ, "PRIVGOV_BENCH_RESULTS": str(tmp_path), "GX_ANALYTICS_ENABLED": "False"}
    res = subprocess.run([sys.executable, "benchmarks/streaming.py", "--sizes", "20000", "--inmem-max", "0",
                          "--batch-rows", "5000", "--data-dir", str(tmp_path / "data")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads((tmp_path / "streaming.json").read_text())
    assert {"machine", "versions", "settings", "goals", "rows"} <= set(data)
    (row,) = data["rows"]
    streamed = row["streamed"]  # (the in-memory side is compared in tests/governance/run/test_streaming_run.py)
    assert "error" not in streamed, streamed
    assert streamed["status"] == "succeeded" and "in_memory" not in row
    assert streamed["rows_ingested"] == 20000 and row["columns"] == 12
    assert streamed["rows_stored"] + streamed["rows_quarantined"] == 20000
    assert streamed["rows_quarantined"] > 0  # the planted dirt is found
    assert streamed["peak_rss_mib"] > 0 and streamed["rows_per_s"] > 0
    assert set(data["goals"]) >= {"rows_per_s_lowest", "rows_per_s_met"}
