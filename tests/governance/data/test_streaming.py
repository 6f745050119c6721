"""Batch readers, batch validation and the batch PII scan give what the in-memory paths give."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

SUITE = REPO / "examples" / "clinic" / "suite.json"


def tricky_csv(path: Path, n: int = 3000) -> Path:
    """Types a per-batch guess would get wrong: a leading zero, a null and a wider code only near the end."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "zip": [f"{x:05d}" for x in rng.integers(10000, 99999, n)],
        "age": rng.integers(0, 100, n).astype(str),
        "score": np.round(rng.normal(size=n), 3).astype(str),
        "flag": rng.choice(["true", "false"], n),
        "maybe": rng.choice(["True", "False"], n),
        "name": rng.choice(["Ann Lee", "Bo", "NA", ""], n),
        "code": [str(100000 + i) for i in range(n)],
        "when": pd.date_range("2020-01-01", periods=n, freq="h").astype(str),
    })
    df.loc[n - 5, "zip"] = "01234"   # only here: the whole column is an identifier (text)
    df.loc[n - 4, "age"] = ""        # a gap late: the whole column is float
    df.loc[n - 3, "maybe"] = ""      # a gap late: nullable boolean
    df.loc[n - 2, "code"] = "1000000"  # one wider code: no longer fixed-width
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("batch", [1, 97, 10_000])
def test_csv_batches_equal_the_whole_file(tmp_path, batch) -> None:
    from governance.data.ingest import read_table
    from governance.data.streaming import open_batches

    p = tricky_csv(tmp_path / "t.csv", 120 if batch == 1 else 3000)
    opts = {"dtype": {"when": "date"}, "na_values": ["?"]}
    whole = read_table(p, csv_options=opts)
    src = open_batches(p, batch, csv_options=opts)
    parts = pd.concat(list(src), ignore_index=True)
    pd.testing.assert_frame_equal(whole, parts)
    assert src.max_batch_rows_seen == min(batch, len(whole))
    assert str(whole["zip"].dtype) != "int64" and whole["age"].dtype == "float64"


def test_parquet_batches_and_memory_bound(tmp_path) -> None:
    """Batches never exceed batch_rows, however large the file: the cheap stand-in for flat peak memory."""
    from governance.data.ingest import read_table
    from governance.data.streaming import open_batches

    for n in (2_000, 20_000):
        p = tmp_path / f"n{n}.parquet"
        pd.DataFrame({"x": np.arange(n), "y": np.arange(n) % 7}).to_parquet(p)
        src = open_batches(p, 1000)
        parts = pd.concat(list(src), ignore_index=True)
        pd.testing.assert_frame_equal(read_table(p), parts)
        assert src.max_batch_rows_seen == 1000 and src.count() == n


def test_duplicate_row_ids_across_batches_are_refused(tmp_path) -> None:
    """A hostile file repeats an id in a later batch: quarantine by id would hit the wrong row."""
    from governance.data.streaming import open_batches
    from privacy.errors import InputError

    p = tmp_path / "ids.parquet"
    pd.DataFrame({"row_id": [1, 2, 3, 4, 5, 2], "x": range(6)}).to_parquet(p)
    with pytest.raises(InputError, match="1 duplicate id.*across batches"):
        list(open_batches(p, 4))
    ok = tmp_path / "ok.parquet"
    pd.DataFrame({"row_id": [10, 2, 30, 4, 50, 6], "x": range(6)}).to_parquet(ok)
    assert pd.concat(list(open_batches(ok, 4)))["row_id"].tolist() == [10, 2, 30, 4, 50, 6]


@pytest.mark.parametrize("ids", [[f"r{i}" for i in range(3000)], list(range(0, 6000, 2))])
def test_duplicate_row_ids_are_found_when_the_ids_spill_to_disk(tmp_path, monkeypatch, ids) -> None:
    """The across-batch id check keeps its ids on disk past the memory budget; a duplicate is still
    found (text ids through a keyed hash, integer ids exactly) and the spill is removed."""
    from governance.data import key_spill
    from governance.data.streaming import open_batches
    from privacy.errors import InputError

    monkeypatch.setattr(key_spill, "MEMORY_KEYS", 100)
    spill = tmp_path / "spill"
    spill.mkdir()
    ok = tmp_path / "ok.parquet"
    pd.DataFrame({"row_id": ids, "x": range(len(ids))}).to_parquet(ok)
    assert len(pd.concat(list(open_batches(ok, 250, spill_dir=spill)))) == len(ids)
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"row_id": [*ids, ids[1234]], "x": range(len(ids) + 1)}).to_parquet(bad)
    with pytest.raises(InputError, match="1 duplicate id.*across batches"):
        list(open_batches(bad, 250, spill_dir=spill))
    assert list(spill.iterdir()) == []


def test_bad_csv_is_one_line_without_cell_values(tmp_path) -> None:
    from governance.data.streaming import open_batches
    from privacy.errors import InputError

    p = tmp_path / "ragged.csv"
    p.write_text("a,b,c\n1,2,3\n4,secret-value,6,7\n")
    with pytest.raises(InputError) as err:
        list(open_batches(p, 10))
    assert "ragged" in str(err.value) and "secret" not in str(err.value)
    with pytest.raises(InputError, match="comment.*not supported when streaming"):
        open_batches(p, 10, csv_options={"comment": "#"})
    with pytest.raises(InputError, match="expected a positive number"):
        open_batches(p, 0)
    empty = tmp_path / "h.csv"
    empty.write_text("a,b\n")
    with pytest.raises(InputError, match="no data rows"):
        list(open_batches(empty, 10))


def test_default_batch_rows_formula() -> None:
    from governance.data.streaming import default_batch_rows, parse_batch_rows
    from privacy.errors import InputError

    assert default_batch_rows(1 << 30) == (1 << 30) // 12800
    assert default_batch_rows(1 << 20) == 10_000 and default_batch_rows(1 << 40) == 1_000_000
    assert parse_batch_rows("0") is None and parse_batch_rows("500") == 500
    assert 10_000 <= parse_batch_rows("auto") <= 1_000_000
    with pytest.raises(InputError, match="expected a number of rows"):
        parse_batch_rows("-3")


def test_batch_validation_equals_in_memory(tmp_path) -> None:
    """Same suite, same file, in batches and whole: identical statuses and failing row ids."""
    from governance.data.ingest import read_table
    from governance.data.quality import load_suite, validate
    from governance.data.quality.batches import validate_batches
    from governance.data.streaming import open_batches
    from governance.demo.sample_data import write_clinic

    p = tmp_path / "c.csv"
    write_clinic(p, 4000, 3)
    suite = load_suite(SUITE)
    whole = validate(read_table(p), suite)
    src = open_batches(p, 333)
    got = validate_batches(src, suite, columns=src.columns)
    assert not whole.success and got.row_count == whole.row_count
    assert [(r.type, r.column, r.success, r.failing_row_ids) for r in whole.results] == \
        [(r.type, r.column, r.success, r.failing_row_ids) for r in got.results]


def test_batch_scan_equals_in_memory_when_the_file_fits_the_sample(tmp_path) -> None:
    from governance.data.ingest import read_table
    from governance.data.pii_report import scan_records
    from governance.data.pii_stream import scan_batches
    from governance.data.streaming import open_batches
    from governance.demo.sample_data import write_clinic

    p = tmp_path / "c.parquet"
    write_clinic(p, 5000, 1)
    assert scan_records(read_table(p)) == scan_batches(open_batches(p, 600))


def test_batch_scan_of_a_larger_file_finds_the_same_columns(tmp_path) -> None:
    from governance.data.ingest import read_table
    from governance.data.pii_report import scan_records
    from governance.data.pii_stream import sample_rows, scan_batches
    from governance.data.streaming import open_batches
    from governance.demo.sample_data import write_clinic

    p = tmp_path / "c.parquet"
    write_clinic(p, 25_000, 2)
    src = open_batches(p, 4000)
    sample, assigned = sample_rows(src, 10_000)
    assert len(sample) == 10_000 and assigned and sample["row_id"].is_unique
    whole = {(f["column"], f["pii_type"], f["kind"]) for f in scan_records(read_table(p))}
    streamed = scan_batches(src)
    assert whole == {(f["column"], f["pii_type"], f["kind"]) for f in streamed}
    quasi = [f for f in streamed if f["kind"] == "quasi"]
    assert quasi and all("in 10,000 sampled rows: min k" in f["evidence"] for f in quasi)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "governance.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def test_cli_validate_and_scan_with_batch_rows(tmp_path) -> None:
    from governance.data.ingest import read_table
    from governance.data.quality import load_suite, validate
    from governance.demo.sample_data import write_clinic

    p = tmp_path / "c.csv"
    write_clinic(p, 3000, 5)
    whole = json.loads(validate(read_table(p), load_suite(SUITE)).to_json())
    batched = cli("quality", "validate", str(p), "--suite", str(SUITE), "--json", "--batch-rows", "250")
    assert batched.returncode == 1, batched.stderr
    assert whole["results"] == json.loads(batched.stdout)["results"]
    from typer.testing import CliRunner

    import governance.cli  # noqa: F401  (registers every command)
    from governance.cli.common import app
    from governance.data.pii_report import scan_records

    scan = CliRunner().invoke(app, ["scan", str(p), "--json", "--batch-rows", "700"])
    assert scan.exit_code == 0, scan.output
    assert json.loads(scan.stdout) == scan_records(read_table(p))
    bad = cli("scan", str(p), "--batch-rows", "lots")
    assert bad.returncode == 2 and "expected a number of rows" in bad.stderr and "Traceback" not in bad.stderr


def test_a_parquet_pass_does_not_keep_the_row_groups_it_has_read(tmp_path) -> None:
    """Arrow's pre-buffering kept every row group read until the pass ended (memory grew with the
    file); bytes held in Arrow's pool must stay at about one batch however far the pass has got."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from governance.data.streaming import open_batches

    rng = np.random.default_rng(0)
    p = tmp_path / "wide.parquet"
    table = pa.table({"x": rng.random(400_000), "s": rng.integers(0, 2**62, 400_000).astype(str)})
    pq.write_table(table, p, row_group_size=10_000)  # 40 row groups, ~12 MB compressed
    del table
    base = pa.total_allocated_bytes()
    held = []
    for df in open_batches(p, 10_000):
        held.append(pa.total_allocated_bytes() - base)
        del df
    assert len(held) == 40
    # measured: ~1.5 MB held with pre-buffering off, ~12.6 MB (the whole file) with it on
    assert max(held) < p.stat().st_size / 3, (max(held), p.stat().st_size)
