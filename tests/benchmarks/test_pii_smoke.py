"""The PII benchmark runs end to end on a small corpus and writes every figure the goals need."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_pii_quick_run_writes_side_by_side_figures(tmp_path) -> None:
    env = {**os.environ, "PRIVGOV_BENCH_RESULTS": str(tmp_path)}
    res = subprocess.run([sys.executable, "benchmarks/pii.py", "--quick"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads((tmp_path / "pii.json").read_text())
    assert {"machine", "versions", "settings", "contention", "goals", "summary", "columns", "spans"} <= set(data)
    assert len(data["settings"]["locales"]) >= 8 and data["settings"]["columns"] >= 20 * 8
    ours, pres = data["summary"]["ours"], data["summary"]["presidio"]
    assert ours["direct_min_recall"] >= 0.9 and ours["direct_min_precision"] >= 0.9
    assert ours["span_f1"] >= 0.9 and ours["span_f1"] > pres["span_f1"]
    assert ours["scan_s"] > 0 and ours["scan_cpu_s"] > 0
    assert data["columns"]["presidio"]["person_name"]["recall"] == 0.0  # no spaCy model: no names
