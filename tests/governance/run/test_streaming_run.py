"""`privgov run` with batch_rows: the stored version equals the in-memory run's, memory is bounded by the batch."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, new_workspace

CLINIC = REPO / "examples" / "clinic" / "pipeline.yaml"


def spec_file(tmp_path: Path, data: Path, **changes) -> Path:
    """The clinic pipeline over a file, without training (training is not streamed)."""
    spec = yaml.safe_load(CLINIC.read_text())
    spec["source"] = {"path": str(data)}
    spec.pop("training")
    spec.pop("report")
    spec["quality"]["suite"] = str(REPO / "examples" / "clinic" / "suite.json")
    spec["policy"] = str(REPO / "policies" / "examples" / "clinic.yaml")
    spec.update(changes)
    path = tmp_path / f"pipeline-{len(list(tmp_path.glob('pipeline-*')))}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def stored(ws, version: int) -> pd.DataFrame:
    from governance.storage import catalog

    with ws.session() as s:
        ds = catalog.find_dataset(s, "clinic-visits")
        return catalog.read_version(ws, s, ds, catalog.get_version(s, ds, version))


@pytest.fixture(scope="module")
def clinic_file(tmp_path_factory) -> Path:
    from governance.demo.sample_data import write_clinic

    out = tmp_path_factory.mktemp("src") / "clinic.csv"
    write_clinic(out, 3000, 7)
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_streamed_run_stores_the_same_rows_and_pseudonyms(tmp_path, clinic_file, fmt) -> None:
    from governance.data.ingest import read_table
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    data = clinic_file
    if fmt == "parquet":
        data = tmp_path / "clinic.parquet"
        read_table(clinic_file).drop(columns=["row_id"]).to_parquet(data)
    ws, tokens = new_workspace(tmp_path / "ws")
    whole = run_pipeline(ws, load_pipeline(spec_file(tmp_path, data)), tokens["demo"])
    streamed = run_pipeline(ws, load_pipeline(spec_file(tmp_path, data, batch_rows=700)), tokens["demo"])
    assert whole.status == streamed.status == "succeeded"
    assert whole.rows_quarantined > 0  # the planted dirt is quarantined on both paths
    for field in ("rows_ingested", "rows_clean", "rows_quarantined", "quarantine_reasons", "k_anonymity",
                  "raw_validation_success", "clean_validation_success"):
        assert getattr(whole, field) == getattr(streamed, field), field
    assert [f["column"] for f in whole.pii_findings] == [f["column"] for f in streamed.pii_findings]
    a, b = stored(ws, whole.version), stored(ws, streamed.version)
    pd.testing.assert_frame_equal(a, b)
    assert b["email"].notna().any() and b["email"].equals(a["email"])  # same keyed pseudonyms
    qa = stored(ws, whole.quarantine_version).reset_index(drop=True)
    qb = stored(ws, streamed.quarantine_version)
    pd.testing.assert_frame_equal(qa, qb)
    with ws.session() as s:
        from governance.storage import catalog

        ds = catalog.find_dataset(s, "clinic-visits")
        va, vb = catalog.get_version(s, ds, whole.version), catalog.get_version(s, ds, streamed.version)
        assert (va.row_count, va.unit_count, va.schema_json) == (vb.row_count, vb.unit_count, vb.schema_json)
        assert vb.meta_json["streamed"] == {"batch_rows": 700}
        dropped = lambda v: [(st.get("step"), st.get("rows_dropped"), sorted(st.get("dropped_row_ids") or []))  # noqa: E731
                             for st in v.steps_json if "rows_in" in st]
        assert dropped(va) == dropped(vb)


def test_streamed_run_holds_one_batch_at_a_time(tmp_path, clinic_file, monkeypatch) -> None:
    """Instrumented source: no pass over the file ever materialises more than batch_rows rows."""
    from governance.data import streaming
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    seen: list[int] = []
    real = streaming.BatchSource.__iter__

    def counting(self):
        for df in real(self):
            seen.append(len(df))
            yield df

    monkeypatch.setattr(streaming.BatchSource, "__iter__", counting)
    ws, tokens = new_workspace(tmp_path / "ws")
    summary = run_pipeline(ws, load_pipeline(spec_file(tmp_path, clinic_file, batch_rows=500)), tokens["demo"])
    assert summary.status == "succeeded"
    assert max(seen) == 500 and sum(seen) >= 4 * 3000  # sample, validate, revalidate, store passes, each in batches of <= 500 rows


def test_streamed_run_spills_keys_to_disk_and_removes_them(tmp_path, clinic_file, monkeypatch) -> None:
    """With a budget of 64 keys in memory, the unit count, the uniqueness expectation and the
    row-id check all take the disk path: same answers as the in-memory run, nothing left behind."""
    from governance.data import key_spill
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    ws, tokens = new_workspace(tmp_path / "ws")
    whole = run_pipeline(ws, load_pipeline(spec_file(tmp_path, clinic_file)), tokens["demo"])
    spilled: list[Path] = []
    real_flush = key_spill.KeySpill._flush

    def flush(self):
        real_flush(self)
        spilled.append(self._dir)

    monkeypatch.setattr(key_spill, "MEMORY_KEYS", 64)
    monkeypatch.setattr(key_spill.KeySpill, "_flush", flush)
    streamed = run_pipeline(ws, load_pipeline(spec_file(tmp_path, clinic_file, batch_rows=500)), tokens["demo"])
    assert streamed.status == "succeeded" and spilled
    assert {p.parent for p in spilled} == {ws.objects.dir}  # on the workspace's disk, not in /tmp
    assert not any(p.exists() for p in spilled)
    assert not list(ws.objects.dir.glob("privgov-keys-*"))
    assert (streamed.rows_clean, streamed.rows_quarantined, streamed.quarantine_reasons) == \
        (whole.rows_clean, whole.rows_quarantined, whole.quarantine_reasons)
    with ws.session() as s:
        from governance.storage import catalog

        ds = catalog.find_dataset(s, "clinic-visits")
        va, vb = catalog.get_version(s, ds, whole.version), catalog.get_version(s, ds, streamed.version)
        assert vb.unit_count == va.unit_count and va.unit_count > 500
    pd.testing.assert_frame_equal(stored(ws, whole.quarantine_version).reset_index(drop=True),
                                  stored(ws, streamed.quarantine_version))


def test_streaming_refuses_what_needs_the_whole_file(tmp_path, clinic_file) -> None:
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline
    from privacy.errors import InputError

    ws, tokens = new_workspace(tmp_path / "ws")
    spec = yaml.safe_load(spec_file(tmp_path, clinic_file, batch_rows=500).read_text())
    spec["cleaning"].append({"step": "impute", "columns": ["bmi"], "strategy": "median"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(InputError, match=r"cleaning step 5 \(impute\): cannot run when streaming"):
        run_pipeline(ws, load_pipeline(path), tokens["demo"])
    spec["cleaning"].pop()
    spec["deid"]["suppress_below_k"] = True
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(InputError, match="suppress_below_k"):
        run_pipeline(ws, load_pipeline(path), tokens["demo"])
    with ws.session() as s:  # nothing was stored by the refused runs
        from governance.storage.store import DatasetVersion

        assert s.query(DatasetVersion).count() == 0
