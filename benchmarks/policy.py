"""Policy decision throughput on one core: ``decide()`` calls per second.

Why: every data access asks the engine first, so it must be cheap enough to sit
on the request path (target: ≥100k decisions/s on one core). The mix covers the
interesting paths: allow with obligations, explicit deny, no purpose, wrong
purpose, deny by default, glob and tag matches.
"""
from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _meta import machine, versions, write_results  # noqa: E402
from policies.engine import Request, compile_policy, decide  # noqa: E402
from policies.schema import load_policy  # noqa: E402

POLICY = ROOT / "policies" / "examples" / "clinic.yaml"


def requests() -> list[Request]:
    now = dt.datetime(2026, 6, 1)
    mk = lambda who, roles, action, ds, tags, purpose: Request(who, roles, action, ds, tags, purpose, now)  # noqa: E731
    return [
        mk("demo", ["ml-engineer", "data-engineer"], "train", "clinic-visits", ["phi"], "readmission-model"),
        mk("ana", ["analyst"], "read_masked", "clinic-visits", ["phi"], "quality-review"),
        mk("demo", ["ml-engineer", "data-engineer"], "ingest", "clinic-visits", ["phi"], "pipeline"),
        mk("cora", ["contractor", "ml-engineer"], "train", "clinic-visits", ["phi"], "readmission-model"),
        mk("demo", ["ml-engineer"], "train", "clinic-visits", ["phi"], None),
        mk("demo", ["ml-engineer"], "train", "clinic-visits", ["phi"], "marketing"),
        mk("ana", ["analyst"], "read", "clinic-visits", ["phi"], "quality-review"),
        mk("root", ["admin"], "erase", "clinic-visits", ["phi"], "compliance"),
    ]


def main() -> None:
    policy = load_policy(POLICY)
    compile_policy(policy)
    reqs = requests()
    allowed = sum(decide(r, policy).allowed for r in reqs)
    n_rounds = 25_000  # 200k decisions per repeat
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n_rounds):
            for r in reqs:
                decide(r, policy)
        elapsed = time.perf_counter() - t0
        best = max(best, n_rounds * len(reqs) / elapsed)
    payload = {
        "benchmark": "policy.decide",
        "machine": machine(),
        "versions": versions("pydantic", "PyYAML"),
        "policy": str(POLICY.relative_to(ROOT)),
        "policy_text": POLICY.read_text(),
        "request_mix": [
            {"principal": r.principal, "roles": r.roles, "action": r.action, "dataset": r.dataset,
             "tags": r.tags, "purpose": r.purpose} for r in reqs
        ],
        "results": {
            "decisions_per_s": round(best),
            "decisions_per_repeat": n_rounds * len(reqs),
            "repeats": 5,
            "statistic": "best of repeats, one thread",
            "allowed_in_mix": allowed,
            "target_decisions_per_s": 100_000,
        },
    }
    out = write_results("policy.json", payload)
    print(f"{best:,.0f} decisions/s (best of 5) -> {out}")


if __name__ == "__main__":
    main()
