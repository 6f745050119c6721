"""Decision throughput of `privgov serve` (`POST /v1/decisions`) with 32 concurrent clients, SQLite and PostgreSQL.

Why: the HTTP policy decision point must keep up with the services that ask it,
and every answer it gives is a promise that the decision is in the audit log.
Each row drives a real `privgov serve` (uvicorn subprocess on 127.0.0.1, started
as the server tests start it) over a fresh workspace, with `clients` concurrent
keep-alive connections (httpx, asyncio, in this process), and counts the audit
rows the run added against the requests answered: a lost event is a failure,
not a footnote. The same process also calls the engine in-process (the route's
two calls - authenticate, then decide and audit - from `clients` threads), so
the cost of HTTP shows side by side.

Honesty notes written into the JSON: the load generator shares the machine's
cores with the server and the database (its CPU seconds are reported per row);
the throwaway PostgreSQL runs with fsync=off and synchronous_commit=off
(tests/pg.py), SQLite with its defaults (WAL, synchronous=FULL); the per-token
rate limit is lifted for the run (`--rate`/`--burst`), since one token is used
by every client.

    python benchmarks/server.py                 # full run, writes benchmarks/results/server.json
    python benchmarks/server.py --requests 300  # quick
    python benchmarks/server.py --requests 160 --smoke  # what tests/benchmarks/test_server_smoke.py runs
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _meta import machine, versions, write_results  # noqa: E402

GOAL = {"decisions_per_s": 1000, "p99_ms": 50, "backend": "postgresql", "lost_audit_events": 0}
PEOPLE = {"demo": ("demo-ml-engineer", ["ml-engineer", "data-engineer"]), "mallory": ("mallory", ["contractor"])}
ASK = {"action": "train", "dataset": "clinic-visits", "purpose": "readmission-model"}
DENY_EVERY = 4  # one request in four is a contractor's (denied, audited all the same)
# (label, extra `privgov serve` options)
SERVER_SETUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("serve 1 worker, uvloop + httptools", ("--workers", "1", "--loop", "uvloop", "--http", "httptools")),
    ("serve 1 worker, asyncio + h11", ("--workers", "1", "--loop", "asyncio", "--http", "h11")),
    ("serve 2 workers, uvloop + httptools", ("--workers", "2", "--loop", "uvloop", "--http", "httptools")),
)


# --------------------------------------------------------------------------- measuring
def _proc_cpu_s(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """`pid` and every descendant (uvicorn workers, PostgreSQL backends)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


class CpuMeter:
    """CPU seconds spent by process trees between start() and stop() (processes alive at stop)."""

    def __init__(self, **roots: int | None) -> None:
        self.roots = {k: v for k, v in roots.items() if v is not None}
        self.before: dict[str, dict[int, float]] = {}

    def _read(self) -> dict[str, dict[int, float]]:
        return {k: {p: _proc_cpu_s(p) for p in _tree(pid)} for k, pid in self.roots.items()}

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        return {k: round(sum(v - self.before.get(k, {}).get(p, 0.0) for p, v in after[k].items()), 2)
                for k in after}


def _quantiles(latencies: list[float]) -> dict[str, float]:
    lat = sorted(latencies)
    if not lat:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}

    def q(f: float) -> float:
        return round(lat[min(len(lat) - 1, int(f * len(lat)))] * 1000, 2)

    return {"p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": round(lat[-1] * 1000, 2)}


def _audit_head(ws: Any) -> int:
    from sqlalchemy import func

    from governance.evidence.audit import AuditEvent

    with ws.session() as s:
        return int(s.query(func.max(AuditEvent.seq)).scalar() or 0)


def _token_for(i: int, tokens: dict[str, str]) -> str:
    return tokens["mallory"] if i % DENY_EVERY == DENY_EVERY - 1 else tokens["demo"]


# --------------------------------------------------------------------------- the two ways of asking
def in_process(ws: Any, tokens: dict[str, str], n: int, clients: int) -> dict[str, Any]:
    """The route's work without HTTP: authenticate, then decide and audit, from `clients` threads."""
    from governance.access.authorize import authenticate
    from governance.api import check_for

    counter = iter(range(n))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def one(i: int) -> None:
        identity = authenticate(ws, _token_for(i, tokens), action="decide", resource=ASK["dataset"],
                                purpose=ASK["purpose"])
        check_for(ws, identity, ASK["action"], ASK["dataset"], purpose=ASK["purpose"])

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                one(i)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(type(exc).__name__)
            latencies.append(time.perf_counter() - t0)

    for i in range(2 * clients):  # warm-up: first token checks, parsed policy, pool
        one(i)
    before = _audit_head(ws)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"requests": n, "answered": n - len(errors), "errors": len(errors), "wall_s": round(wall, 3),
            "decisions_per_s": round((n - len(errors)) / wall, 1), **_quantiles(latencies),
            "cpu_s": {"engine_and_callers": round(time.process_time() - cpu0, 2)},
            "audit_rows": _audit_head(ws) - before}


async def _drive(url: str, tokens: dict[str, str], n: int, clients: int, start: int = 0) -> dict[str, Any]:
    import httpx

    counter = iter(range(start, start + n))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def worker() -> None:
            for i in counter:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/decisions", json=ASK,
                                          headers={"Authorization": f"Bearer {_token_for(i, tokens)}"})
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {"latencies": latencies, "statuses": statuses, "failures": failures, "wall_s": wall}


def over_http(ws: Any, tokens: dict[str, str], n: int, clients: int, options: tuple[str, ...],
              db_pid: int | None) -> dict[str, Any]:
    """One `privgov serve` started for this row, warmed up, then driven; its CPU and the audit count."""
    from tests.governance.server.conftest import start_server, stop_server

    url, proc = start_server(ws.root, "--rate", "1000000", "--burst", "1000000", *options)
    try:
        asyncio.run(_drive(url, tokens, 4 * clients, clients, start=0))  # every worker checks each token once
        before = _audit_head(ws)
        meter = CpuMeter(server=proc.pid, database=db_pid)
        meter.start()
        cpu0 = time.process_time()
        res = asyncio.run(_drive(url, tokens, n, clients))
        client_cpu = time.process_time() - cpu0
        cpu = meter.stop()
    finally:
        stop_server(proc)
    answered = res["statuses"].get(200, 0)
    rows = _audit_head(ws) - before
    return {"requests": n, "answered": answered, "statuses": {str(k): v for k, v in sorted(res["statuses"].items())},
            "transport_errors": len(res["failures"]),
            "transport_error_types": sorted(set(res["failures"])), "wall_s": round(res["wall_s"], 3),
            "decisions_per_s": round(answered / res["wall_s"], 1), **_quantiles(res["latencies"]),
            "cpu_s": {"client": round(client_cpu, 2), **cpu}, "audit_rows": rows,
            "lost_audit_events": max(0, answered - rows)}


# --------------------------------------------------------------------------- one backend
def backend_rows(backend: str, n: int, clients: int, cluster: Any, setups: tuple, workdir: Path) -> list[dict]:
    from governance.evidence.verify import verify_workspace
    from tests.conftest import new_workspace

    ws, tokens = new_workspace(workdir / f"ws-{backend}", PEOPLE, db_url=cluster.url if cluster else None)
    db_pid = _postmaster_pid(cluster) if cluster else None
    rows = [{"backend": backend, "mode": "in-process engine (authenticate + decide + audit)", "clients": clients,
             **in_process(ws, tokens, n, clients)}]
    rows[-1]["lost_audit_events"] = max(0, rows[-1]["answered"] - rows[-1]["audit_rows"])
    _print(rows[-1])
    for label, options in setups:
        rows.append({"backend": backend, "mode": label, "clients": clients,
                     **over_http(ws, tokens, n, clients, options, db_pid)})
        _print(rows[-1])
    report = verify_workspace(ws)
    for r in rows:
        r["audit_chain_verifies"] = report.ok
    ws.engine.dispose()
    return rows


def _postmaster_pid(cluster: Any) -> int | None:
    try:
        return int((cluster.datadir / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _print(row: dict) -> None:
    print(f"{row['backend']:>10} | {row['mode']:<52} | {row['decisions_per_s']:>7.1f}/s p50 {row['p50_ms']:>6.1f} ms "
          f"p99 {row['p99_ms']:>7.1f} ms | audit {row['audit_rows']}/{row['answered']} | cpu {row['cpu_s']}",
          flush=True)


def main(requests: int = 3000, clients: int = 32, backends: tuple[str, ...] = ("sqlite", "postgresql"),
         setups: tuple = SERVER_SETUPS, out: str | None = "server.json") -> dict[str, Any]:
    from tests.pg import start_cluster

    load_start = os.getloadavg()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="privgov-bench-server-") as tmp:
        for backend in backends:
            cluster = None
            if backend == "postgresql":
                cluster = start_cluster()
                os.environ["PRIVGOV_DB_PASSWORD"] = cluster.password
            try:
                rows.extend(backend_rows(backend, requests, clients, cluster, setups, Path(tmp)))
            finally:
                if cluster is not None:
                    cluster.stop()
                    os.environ.pop("PRIVGOV_DB_PASSWORD", None)
    pg_http = [r for r in rows if r["backend"] == "postgresql" and not r["mode"].startswith("in-process")]
    best = max(pg_http, key=lambda r: r["decisions_per_s"], default=None)
    met = bool(best and best["decisions_per_s"] >= GOAL["decisions_per_s"] and best["p99_ms"] < GOAL["p99_ms"]
               and all(r["lost_audit_events"] == 0 for r in rows))
    payload = {
        "benchmark": "server",
        "machine": machine(),
        "versions": versions("fastapi", "uvicorn", "uvloop", "httptools", "httpx", "starlette", "pydantic",
                             "SQLAlchemy", "psycopg", "psycopg-binary"),
        "setup": {"clients": clients, "requests_per_row": requests, "request": ASK,
                  "mix": f"1 in {DENY_EVERY} requests by a contractor (denied); the rest allowed",
                  "client": "httpx.AsyncClient in the benchmark process, keep-alive, on the same cores as the server",
                  "postgresql": "throwaway cluster from tests/pg.py: fsync=off, synchronous_commit=off",
                  "sqlite": "workspace default: WAL, synchronous=FULL",
                  "rate_limit": "lifted (--rate/--burst 1e6): every client uses the same token"},
        "load_average_1_5_15": {"start": [round(x, 1) for x in load_start],
                                "end": [round(x, 1) for x in os.getloadavg()]},
        "goal": GOAL,
        "goal_met": met,
        "best_postgresql_http": None if best is None else {k: best[k] for k in ("mode", "decisions_per_s", "p99_ms")},
        "rows": rows,
    }
    if out:
        path = write_results(out, payload)
        print(f"goal (>= {GOAL['decisions_per_s']}/s, p99 < {GOAL['p99_ms']} ms on PostgreSQL, 0 lost): "
              f"{'met' if met else 'NOT met'} -> {path}")
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per row")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--smoke", action="store_true", help="one server setup per backend (keeps the script working)")
    args = parser.parse_args()
    main(args.requests, args.clients, tuple(args.backend or ("sqlite", "postgresql")),
         SERVER_SETUPS[:1] if args.smoke else SERVER_SETUPS)
