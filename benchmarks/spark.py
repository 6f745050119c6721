"""Benchmark: the data layer on Spark (local[N]) against pandas, on the clinic sample.

Why: `engine: spark` is for data that outgrows one process; on one machine it
pays JVM start, Arrow transfers and per-job scheduling. This measures, side by
side on the same frame: validation (privgov fast engine, GX on pandas, GX on
Spark; each with row ids) and storing a version (pandas single blob vs Spark
partitions sealed on executors), plus the read-back. The load average is
recorded: on a shared machine it dominates the numbers.

    python benchmarks/spark.py [--rows 100000] [--master local[2]] [--partitions 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _meta import machine, versions, write_results  # noqa: E402


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--out", default="spark.json")
    args = ap.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import numpy as np

    from governance.data.quality import load_suite, validate
    from governance.data.spark import spark_session
    from governance.data.spark import store as spark_store
    from governance.data.spark.validate import validate_spark
    from governance.demo.sample_data import generate_clinic
    from governance.storage import catalog
    from governance.workspace import Workspace

    suite = load_suite(ROOT / "examples" / "clinic" / "suite.json")
    df = generate_clinic(args.rows, seed=7)
    df.insert(0, "row_id", np.arange(len(df), dtype=np.int64))
    load_before = os.getloadavg()
    spark, start_s = _timed(lambda: spark_session(args.master))
    sdf, to_spark_s = _timed(lambda: spark.createDataFrame(df).repartition(args.partitions).cache())
    sdf.count()
    res: dict[str, dict] = {}
    fast, t = _timed(lambda: validate(df, suite, engine="fast"))
    res["validate_fast_pandas"] = {"seconds": t, "failing_rows": len(fast.failing_row_ids)}
    gx, t = _timed(lambda: validate(df, suite, engine="gx"))
    res["validate_gx_pandas"] = {"seconds": t, "failing_rows": len(gx.failing_row_ids)}
    sp, t = _timed(lambda: validate_spark(sdf, suite))
    res["validate_gx_spark"] = {"seconds": t, "failing_rows": len(sp.failing_row_ids)}
    res["same_failing_ids"] = {"fast_vs_spark": fast.failing_row_ids == sp.failing_row_ids,
                               "gx_vs_spark": gx.failing_row_ids == sp.failing_row_ids}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        with ws.session() as s:
            ds = catalog.get_or_create_dataset(s, "bench", privacy_unit="patient_id", row_id_column="row_id", tags=[])
            v1, t1 = _timed(lambda: catalog.write_version(ws, s, ds, df))
            v2, t2 = _timed(lambda: spark_store.write_version(ws, s, ds, sdf, like=spark_store.timestamp_types(df)))
            _, r1 = _timed(lambda: catalog.read_version(ws, s, ds, v1))
            _, r2 = _timed(lambda: catalog.read_version(ws, s, ds, v2))
    res["store_pandas_single_blob"] = {"write_seconds": t1, "read_seconds": r1}
    res["store_spark_partitioned"] = {"write_seconds": t2, "read_seconds": r2, "partitions": args.partitions}
    payload = {
        "benchmark": "spark data layer vs pandas (clinic sample, 17 expectations, row ids only)",
        "rows": args.rows, "master": args.master, "spark_session_start_seconds": start_s,
        "pandas_to_spark_seconds": to_spark_s, "results": res,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "machine": machine(), "versions": versions("pyspark", "great_expectations", "pandas", "pyarrow"),
        "note": "one shared machine; load averages above the core count inflate every figure, Spark's most",
    }
    print(write_results(args.out, payload))


if __name__ == "__main__":
    main()
