"""`privgov pii detectors`: every registered detector, with the precision/recall the benchmark
measured (read from its JSON), or "not measured" when there is no measurement."""
from __future__ import annotations

import json

import pytest

from governance.cli import main
from tests.conftest import REPO

RESULTS = REPO / "benchmarks" / "results" / "pii.json"


def _run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, _ = capsys.readouterr()
    return code, out


def test_without_a_measurement_says_not_measured(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PRIVGOV_BENCH_RESULTS", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    code, out = _run(capsys, "pii", "detectors")
    assert code == 0
    assert "not measured" in out and "person_name" in out and "record_id" in out
    code, out = _run(capsys, "pii", "detectors", "--json")
    cat = json.loads(out)
    assert cat["source"] is None and all(d["precision"] is None for d in cat["detectors"])


@pytest.mark.skipif(not RESULTS.exists(), reason="benchmarks/results/pii.json not written yet")
def test_figures_are_the_benchmarks(capsys, monkeypatch) -> None:
    monkeypatch.delenv("PRIVGOV_BENCH_RESULTS", raising=False)
    measured = json.loads(RESULTS.read_text())["columns"]["ours"]
    code, out = _run(capsys, "pii", "detectors", "--json")
    assert code == 0
    rows = {d["name"]: d for d in json.loads(out)["detectors"]}
    checked = 0
    for name, d in rows.items():
        m = measured.get(d["types"][0])
        if isinstance(m, dict) and m.get("support"):
            assert (d["precision"], d["recall"]) == (m["precision"], m["recall"]), name
            checked += 1
    assert checked >= 20


def test_bad_inputs_exit_nonzero_without_traceback(capsys, tmp_path, monkeypatch) -> None:
    assert _run(capsys, "pii", "detectors", "--format", "yaml")[0] != 0
    (tmp_path / "pii.json").write_text("{not json")
    monkeypatch.setenv("PRIVGOV_BENCH_RESULTS", str(tmp_path))
    code = main(["pii", "detectors"])
    _, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in err and "pii.json" in err
