"""The audit-power benchmark runs on CPU and records every scenario with machine and versions."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO


def test_audit_power_quick_run_writes_all_scenarios(tmp_path) -> None:
    env = {**os.environ, "PRIVGOV_BENCH_RESULTS": str(tmp_path)}
    res = subprocess.run([sys.executable, "benchmarks/audit_power.py", "--quick"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads((tmp_path / "audit_power.json").read_text(),
                      parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # strict JSON: no Infinity
    assert {"machine", "versions", "settings", "summary", "results"} <= set(data) and data["machine"]["code_version"]
    assert set(data["summary"]) == {"sigma0", "seeded_leak", "dp_eps1", "dp_eps1_seed_attacker", "dp_eps4",
                                    "dp_eps4_seed_attacker"}
    s = data["summary"]
    assert s["sigma0"]["claimed_epsilon"] is None and s["sigma0"]["min"] >= 2.0
    assert s["seeded_leak"]["min"] > s["seeded_leak"]["claimed_epsilon"]
    for name in ("dp_eps1", "dp_eps1_seed_attacker", "dp_eps4", "dp_eps4_seed_attacker"):
        assert s[name]["max"] <= s[name]["claimed_epsilon"]
    assert not (REPO / "benchmarks" / "results" / "audit_power.json").exists() or \
        json.loads((REPO / "benchmarks" / "results" / "audit_power.json").read_text())["settings"]["quick"] is False
