"""Versions written from Spark: encrypted on the executors, read back as the pandas path reads its own."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.data.spark import store as spark_store
from governance.errors import IntegrityFailure
from governance.storage import catalog, partitioned
from tests.conftest import new_workspace

MARKER = "Qwzx-Spark-Patient-90210"


def _frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "row_id": np.arange(n, dtype=np.int64),
        "patient_id": rng.integers(0, 120, n),
        "name": [f"{MARKER}-{i}" if i % 7 else None for i in range(n)],
        "age": rng.integers(0, 100, n),
        "bmi": np.where(np.arange(n) % 11 == 0, np.nan, rng.normal(27, 4, n)),
        "visit_date": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
    })


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory):
    ws, _tokens = new_workspace(tmp_path_factory.mktemp("spark-ws") / "ws")
    return ws


def test_spark_version_reads_back_as_the_pandas_version(spark, ws) -> None:
    df = _frame()
    sdf = spark.createDataFrame(df).repartition(3)  # a shuffle: spill/shuffle files must be encrypted too
    with ws.session() as s:
        ds = catalog.get_or_create_dataset(s, "clinic-visits", privacy_unit="patient_id", row_id_column="row_id",
                                           tags=["phi"])
        plain = catalog.write_version(ws, s, ds, df)
        parted = spark_store.write_version(ws, s, ds, sdf, like=spark_store.timestamp_types(df))
        a = catalog.read_version(ws, s, ds, plain)
        b = catalog.read_version(ws, s, ds, parted)
        assert parted.row_count == len(df) and parted.unit_count == plain.unit_count
        addresses = partitioned.partition_addresses(parted.meta_json)
    assert len(addresses) == 3
    b = b.sort_values("row_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)  # values, dtypes (timestamps included), nulls
    # no plaintext anywhere: not in the workspace, not in Spark's local dirs (shuffle, temp files)
    local_dirs = [Path(d) for d in spark.sparkContext.getConf().get("spark.local.dir", "").split(",") if d]
    assert local_dirs, "the test session sets spark.local.dir so it can be scanned"
    for root in [ws.root, *local_dirs]:
        for f in root.rglob("*"):
            if f.is_file():
                assert MARKER.encode() not in f.read_bytes(), f


def test_partition_swapped_between_spark_versions_is_refused(spark, ws) -> None:
    df = _frame(60)
    with ws.session() as s:
        ds = catalog.find_dataset(s, "clinic-visits")
        v1 = spark_store.write_version(ws, s, ds, spark.createDataFrame(df).repartition(2))
        v2 = spark_store.write_version(ws, s, ds, spark.createDataFrame(df).repartition(2))
        p1 = partitioned.partition_addresses(v1.meta_json)
        p2 = partitioned.partition_addresses(v2.meta_json)
        target = ws.objects.path_for(p1[0])
        original = target.read_bytes()
        target.write_bytes(ws.objects.path_for(p2[0]).read_bytes())  # same data, same key store, other version
        with pytest.raises(IntegrityFailure):
            catalog.read_version(ws, s, ds, v1)
        target.write_bytes(original)
        ws.objects.path_for(p1[1]).unlink()  # a dropped partition
        with pytest.raises(IntegrityFailure, match="missing"):
            catalog.read_version(ws, s, ds, v1)


def test_erasure_deletes_every_partition(spark, ws) -> None:
    with ws.session() as s:
        ds = catalog.find_dataset(s, "clinic-visits")
        v = spark_store.write_version(ws, s, ds, spark.createDataFrame(_frame(50)).repartition(2))
        number, addresses = v.version, partitioned.partition_addresses(v.meta_json)
    with ws.session() as s:
        report = catalog.erase_version(ws, s, catalog.find_dataset(s, "clinic-visits"), number)
    catalog.finalize_erasure(ws, report)
    assert all(not ws.objects.path_for(a).exists() for a in addresses)


def test_layout_flag_edited_in_the_database_is_refused(spark, ws) -> None:
    """`meta_json.storage` is not trusted: flipping it makes the reader use the wrong associated data."""
    from sqlalchemy.orm.attributes import flag_modified

    df = _frame(40)
    with ws.session() as s:
        ds = catalog.find_dataset(s, "clinic-visits")
        parted = spark_store.write_version(ws, s, ds, spark.createDataFrame(df).repartition(2))
        plain = catalog.write_version(ws, s, ds, df)
        storage = parted.meta_json["storage"]
        parted.meta_json = {k: v for k, v in parted.meta_json.items() if k != "storage"}  # "a single blob"
        plain.meta_json = {**plain.meta_json, "storage": storage}  # "a manifest"
        flag_modified(parted, "meta_json")
        flag_modified(plain, "meta_json")
        s.flush()
        for row in (parted, plain):
            with pytest.raises(IntegrityFailure):
                catalog.read_version(ws, s, ds, row)
