"""The throughput benchmark must run on CPU (the GPU numbers come from the same script), and its ratios
must be like for like: a row is only ever divided by the non-private step run in the mode the row ran."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

CPU_ENGINES = ["nonprivate_eager", "opacus_usual", "opacus_ghost", "privgov_eager", "privgov_eager_oldrng"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("dp_throughput_bench", REPO / "benchmarks" / "dp_throughput.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_dp_throughput_quick_cpu_run_pairs_modes_and_records_memory_and_generators(tmp_path) -> None:
    env = {**os.environ, "PRIVGOV_BENCH_RESULTS": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "benchmarks/dp_throughput.py", "--quick", "--device", "cpu", "--workloads", "mlp_b1024",
         "--tag", "smoke"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    data = json.loads((tmp_path / "dp_throughput_smoke.json").read_text())
    assert {"machine", "versions", "results", "workloads", "skipped", "failed"} <= set(data)
    assert data["machine"]["code_version"] and data["failed"] == {}
    # What a CPU cannot run is said, not silently missing.
    assert set(data["skipped"]) == {"nonprivate_graph", "privgov_graph", "privgov_graph_oldrng", "nonprivate_compile"}
    assert "RSS" in data["settings"]["peak_kind"]
    rows = {r["engine"]: r for r in data["results"]}
    assert sorted(rows) == sorted(CPU_ENGINES)
    for r in rows.values():
        assert r["workload"] == "mlp_b1024" and r["samples_per_s"] > 0 and r["peak_mib"] > 0
        assert r["mode_used"] == "eager" and r["baseline"] == "nonprivate_eager"
        assert r["peak_ratio_to_baseline"] > 0 and r["start_mib"] > 0
    assert rows["nonprivate_eager"]["ratio_to_baseline"] == 1.0
    assert "ghost" in rows["opacus_ghost"]["clipping"]
    old, new = rows["privgov_eager_oldrng"], rows["privgov_eager"]
    assert "INSECURE" in old["rng"] and "ChaCha20" in new["rng"]  # the old generator's row is labelled
    for r in (old, new):
        assert r["step_ms"] > 0 and r["sample_ms"] > 0 and r["noise_ms"] > 0 and r["noise_values_per_step"] > 0
    (w,) = data["workloads"]
    assert w["headline"]["privgov"] == "privgov_eager" and w["headline"]["nonprivate"] == "nonprivate_eager"
    assert w["like_for_like"] == [{"mode": "eager", "privgov": "privgov_eager", "nonprivate": "nonprivate_eager",
                                   "ratio": new["ratio_to_baseline"], "peak_ratio": new["peak_ratio_to_baseline"]}]
    (cmp,) = w["rng_comparison"]
    assert cmp["engines"] == "privgov_eager vs privgov_eager_oldrng" and isinstance(cmp["goal_met"], bool)
    assert cmp["samples_per_s"] == [old["samples_per_s"], new["samples_per_s"]]
    assert not list((REPO / "benchmarks" / "results").glob("*smoke*"))


def _row(engine: str, sps: float, mode_used: str | None = None, peak: float = 100.0) -> dict:
    from_mode = {"nonprivate_graph": "cuda_graph", "privgov_graph": "cuda_graph", "privgov_graph_oldrng": "cuda_graph",
                 "nonprivate_compile": "compile"}
    return {"engine": engine, "samples_per_s": sps, "mode_used": mode_used or from_mode.get(engine, "eager"),
            "peak_mib": peak}


def test_a_graph_row_is_never_divided_by_the_eager_baseline(bench) -> None:
    """The H100 mistake: privgov replaying a graph over an eager non-private step read 3.01x."""
    rows = [_row("nonprivate_eager", 800.0), _row("privgov_eager", 320.0), _row("privgov_graph", 2480.0)]
    bench.pair_with_baselines(rows)
    graph = rows[2]
    assert graph["baseline"] is None and graph["ratio_to_baseline"] is None  # no graph baseline measured: no ratio
    s = bench.summarise(rows)
    assert s["like_for_like"] == [{"mode": "eager", "privgov": "privgov_eager", "nonprivate": "nonprivate_eager",
                                   "ratio": 0.4, "peak_ratio": 1.0}]
    # Nor is the headline: the best privgov ran in a mode no baseline ran in, so there is no headline ratio.
    assert s["headline"]["ratio"] is None and "nonprivate_graph" in s["headline"]["why"]


def test_headline_takes_the_best_nonprivate_of_any_mode_and_ignores_the_insecure_generator(bench) -> None:
    rows = [_row("nonprivate_eager", 800.0), _row("nonprivate_graph", 6000.0), _row("nonprivate_compile", 1500.0),
            _row("privgov_eager", 320.0), _row("privgov_graph", 2400.0, peak=150.0),
            _row("privgov_graph_oldrng", 2500.0), _row("opacus_usual", 60.0)]
    bench.pair_with_baselines(rows)
    by = {r["engine"]: r for r in rows}
    assert by["privgov_graph"]["baseline"] == "nonprivate_graph" and by["privgov_graph"]["ratio_to_baseline"] == 0.4
    assert by["privgov_graph"]["peak_ratio_to_baseline"] == 1.5
    assert by["opacus_usual"]["baseline"] == "nonprivate_eager"
    h = bench.summarise(rows)["headline"]
    assert (h["privgov"], h["nonprivate"], h["ratio"]) == ("privgov_graph", "nonprivate_graph", 0.4)


def test_a_graph_that_fell_back_to_eager_is_paired_with_the_eager_baseline(bench) -> None:
    rows = [_row("nonprivate_eager", 800.0), _row("nonprivate_graph", 6000.0),
            _row("privgov_graph", 400.0, mode_used="eager")]
    bench.pair_with_baselines(rows)
    assert rows[2]["baseline"] == "nonprivate_eager" and rows[2]["ratio_to_baseline"] == 0.5


def test_rng_comparison_flags_a_secure_generator_more_than_5_percent_slower(bench) -> None:
    def priv(engine: str, sps: float) -> dict:
        return {**_row(engine, sps), "sample_ms": 1.0, "noise_ms": 2.0, "sample_cpu_ms": 1.0, "noise_cpu_ms": 2.0,
                "step_ms": 10.0, "step_cpu_ms": 10.0}

    (ok,) = bench.rng_comparison([priv("privgov_eager_oldrng", 1000.0), priv("privgov_eager", 960.0)])
    (bad,) = bench.rng_comparison([priv("privgov_eager_oldrng", 1000.0), priv("privgov_eager", 940.0)])
    assert ok["goal_met"] is True and bad["goal_met"] is False and bad["throughput_change"] == -0.06


def test_cpu_peak_memory_is_reset_between_engines(bench) -> None:
    """ru_maxrss never goes down: without the reset every row after a big engine reports that engine's peak."""
    import torch

    mem = bench.Memory(torch.device("cpu"))
    assert "reset before the engine" in mem.kind
    mem.start()
    big = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    high = mem.peak()
    del big
    mem.start()
    assert mem.peak() < high - 32


def test_unknown_engine_is_refused_with_the_list(bench) -> None:
    with pytest.raises(SystemExit, match="unknown"):
        bench.main(["--engines", "privgov_turbo", "--device", "cpu"])
