"""The clinic pipeline with `engine: spark` against `engine: pandas`: the same stored version.

Both runs use one workspace and one dataset, so the pseudonym keys are the same
and the two stored versions must read back as the same frame: same rows, same
cleaned values, same pseudonyms, same quarantined row ids.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from governance.storage import catalog, partitioned
from governance.storage.store import ValidationRecord
from tests.conftest import REPO, new_workspace

CLINIC = REPO / "examples" / "clinic" / "pipeline.yaml"


def _spec(tmp: Path, engine: str) -> Path:
    spec = yaml.safe_load(CLINIC.read_text())
    spec["source"]["rows"] = 1500
    spec.pop("training")
    spec.pop("report")
    spec["engine"] = engine
    spec["quality"]["suite"] = str(REPO / "examples" / "clinic" / "suite.json")
    spec["policy"] = str(REPO / "policies" / "examples" / "clinic.yaml")
    path = tmp / f"pipeline-{engine}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_spark_run_stores_what_the_pandas_run_stores(spark, tmp_path: Path) -> None:
    from governance.run.runner import run_pipeline
    from governance.run.spec import load_pipeline

    ws, tokens = new_workspace(tmp_path / "ws")
    ran = {e: run_pipeline(ws, load_pipeline(_spec(tmp_path, e)), tokens["demo"]) for e in ("pandas", "spark")}
    pd_run, sp_run = ran["pandas"], ran["spark"]
    assert sp_run.status == pd_run.status == "succeeded"
    assert (sp_run.rows_clean, sp_run.rows_quarantined, sp_run.k_anonymity) == \
        (pd_run.rows_clean, pd_run.rows_quarantined, pd_run.k_anonymity)
    assert sp_run.quarantine_reasons == pd_run.quarantine_reasons
    with ws.session() as s:
        ds = catalog.find_dataset(s, "clinic-visits")
        versions = {v.version: v for v in catalog.versions_of(s, ds)}
        a = catalog.read_version(ws, s, ds, versions[pd_run.version])
        spark_row = versions[sp_run.version]
        assert partitioned.partition_addresses(spark_row.meta_json)  # really the partitioned layout
        b = catalog.read_version(ws, s, ds, spark_row)
        qa = catalog.read_version(ws, s, ds, versions[pd_run.quarantine_version])
        qb = catalog.read_version(ws, s, ds, versions[sp_run.quarantine_version])
        records = s.query(ValidationRecord).order_by(ValidationRecord.id).all()
        ids = [(r.stage, r.result_json["failing_row_ids"]) for r in records]
    key = "row_id"
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                  b.sort_values(key).reset_index(drop=True))
    assert sorted(qa[key]) == sorted(qb[key])
    assert ids[0] == ids[2] and ids[1] == ids[3]  # raw and cleaned validations: same failing row ids
