"""Budget reservations on PostgreSQL from 64 separate processes: overspend, errors, latency.

Why: on a shared server many `privgov run` processes (a scheduler's workers)
reserve budget from one ledger at once. The promise is exact: the cap admits
the runs that fit and not one more, every other process gets a clean
BudgetExceeded, and nothing fails with a database error. Runs against a
throwaway cluster from Debian's `postgresql` (tests/pg.py); also records the
racing `set_cap` outcome (one winner, clean refusals).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _meta import machine, versions, write_results  # noqa: E402


def main(processes: int = 64, fits: int = 20) -> dict:
    import os

    from tests.pg import start_cluster
    from tests.privacy.test_ledger_postgres import _cap_worker, _collect, _url_and_schema, reserve_many

    cluster = start_cluster()
    os.environ["PRIVGOV_DB_PASSWORD"] = cluster.password
    try:
        res = reserve_many(cluster, processes, fits)
        url, schema, _ = _url_and_schema(cluster)
        values = [1.0, 2.0, 3.0, 4.0] * 4
        t0 = time.perf_counter()
        caps = _collect(_cap_worker, lambda i: (url, schema, i, values[i]), len(values))
        cap_wall = time.perf_counter() - t0
        winners = {eps for eps, o in caps.values() if o == "ok"}
        clean = all(o == "ok" or o.startswith("InputError: ") for _, o in caps.values())
    finally:
        cluster.stop()
    payload = {
        "benchmark": "pg_ledger",
        "machine": machine(),
        "versions": versions("SQLAlchemy", "psycopg", "psycopg-binary", "alembic"),
        "server": "PostgreSQL throwaway cluster (Debian postgresql, fsync=off) on 127.0.0.1",
        "load_average_1_5_15_at_end": [round(x, 1) for x in os.getloadavg()],  # the 2 cores are shared
        "results": {
            "reservations": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()},
            "set_cap_race": {"processes": len(values), "distinct_caps": 4, "winning_caps": sorted(winners),
                             "ok": sum(o == "ok" for _, o in caps.values()),
                             "clean_refusals": sum(o.startswith("InputError: ") for _, o in caps.values()),
                             "all_clean": clean, "wall_s": round(cap_wall, 3)},
        },
    }
    out = write_results("pg_ledger.json", payload)
    r = res
    print(f"{processes} processes: admitted {r['admitted']} (fit {fits}), refused {r['refused']}, errors "
          f"{len(r['errors'])}, overspend {r['overspend']}; wall {r['wall_s']:.1f}s; set_cap race winners "
          f"{sorted(winners)} clean={clean} -> {out}")
    return payload


if __name__ == "__main__":
    main()
