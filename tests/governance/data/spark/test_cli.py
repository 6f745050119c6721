"""`privgov quality validate --engine spark`: the same ids as the fast engine; a clear line without PySpark."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from governance.cli import main
from tests.conftest import REPO

SUITE = REPO / "examples" / "clinic" / "suite.json"


def test_validate_engine_spark_matches_fast(spark, capsys, tmp_path: Path) -> None:
    from governance.demo.sample_data import write_clinic

    csv = write_clinic(tmp_path / "visits.csv", 300, seed=5)
    small = json.loads(SUITE.read_text())  # three expectations: the clinic parity test covers the whole suite
    small["expectations"] = [e for e in small["expectations"]
                             if e["type"] == "expect_column_values_to_be_in_set"][:2] + small["expectations"][5:6]
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(small))
    results = {}
    for engine in ("fast", "spark"):
        code = main(["quality", "validate", str(csv), "--suite", str(suite), "--engine", engine, "--json"])
        out, _ = capsys.readouterr()
        results[engine] = (code, json.loads(out))
    (code_f, fast), (code_s, sp) = results["fast"], results["spark"]
    assert code_f == code_s == 1
    assert sp["failing_row_ids"] == fast["failing_row_ids"] and sp["failing_row_ids"]
    assert {r["engine"] for r in sp["results"]} == {"gx-spark"}


def test_engine_spark_without_pyspark_is_one_line_exit_2(tmp_path: Path) -> None:
    """A fresh interpreter where `import pyspark` fails, as on a machine without the extra."""
    csv = tmp_path / "t.csv"
    csv.write_text("a\n1\n")
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "from governance.cli import main\n"
            f"sys.exit(main(['quality', 'validate', {str(csv)!r}, '--suite', {str(SUITE)!r}, '--engine', 'spark']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**os.environ, "GX_ANALYTICS_ENABLED": "False"})
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert lines == ["error: engine `spark` needs PySpark, which is not installed; run: pip install 'privgov[spark]'"]
