"""The throughput benchmark must run on CPU (the GPU numbers come from the same script)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_dp_throughput_quick_cpu_run_writes_the_engines_and_the_csprng_breakdown(tmp_path) -> None:
    env = {**os.environ, "PRIVGOV_BENCH_RESULTS": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "benchmarks/dp_throughput.py", "--quick", "--device", "cpu", "--workloads", "mlp_b1024",
         "--engines", "nonprivate,opacus_usual,privgov,privgov_csprng", "--tag", "smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads((tmp_path / "dp_throughput_smoke.json").read_text())
    assert {"machine", "versions", "results"} <= set(data) and data["machine"]["code_version"]
    rows = {r["engine"]: r for r in data["results"]}
    assert set(rows) == {"nonprivate", "opacus_usual", "privgov", "privgov_csprng"}
    for r in rows.values():
        assert r["workload"] == "mlp_b1024" and r["samples_per_s"] > 0 and r["peak_mib"] > 0
    assert rows["nonprivate"]["ratio_to_nonprivate"] == 1.0
    old, new = rows["privgov"], rows["privgov_csprng"]
    assert "INSECURE" in old["rng"] and "ChaCha20" in new["rng"]  # the old generator's row is labelled
    for r in (old, new):
        assert r["step_ms"] > 0 and r["sample_ms"] > 0 and r["noise_ms"] > 0 and r["noise_values_per_step"] > 0
    (over,) = data["csprng_overhead"]
    assert over["workload"] == "mlp_b1024" and over["engines"] == "privgov_csprng vs privgov"
    assert not list((REPO / "benchmarks" / "results").glob("*smoke*"))
