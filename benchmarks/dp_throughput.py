"""DP training throughput: non-private vs the usual Opacus setup vs privgov.

Why: DP-SGD is often dismissed as 10x slower; most of that is the CPU
DataLoader and materialized per-sample gradients, not DP itself. Same process,
same model, same data, same optimizer (SGD, momentum 0.9):

* `nonprivate`   - data resident on the device, random index batches, eager.
* `nonprivate_graph` - the same step captured once in a CUDA graph and
                   replayed (CUDA only): the fair baseline for `privgov`,
                   which also replays a graph. Ratios stay relative to
                   `nonprivate`; `ratio_to_nonprivate_graph` is added beside.
* `opacus_usual` - TensorDataset + DataLoader + PrivacyEngine.make_private with
                   Poisson sampling, as Opacus' README wires it.
* `privgov`      - training.stepper.DPStepper: Poisson sampling on the device,
                   book-keeping clipping, CUDA graph replay on GPU (one graph
                   per batch-size bucket, see training/stepper.py), with the
                   OLD seeded torch.Generator for masks and noise
                   (training/insecure_random.py): NOT private (issue 11), kept
                   only as the like-for-like baseline of the row below.
* `privgov_csprng` - the same step with the per-run ChaCha20 generator
                   (training/secure_random.py) that governed runs use.
* `privgov_eager`, `privgov_csprng_eager` - the same without the CUDA graph
                   (shows what the graph buys); on CPU there is no graph, so
                   they equal the rows above and are skipped.

Each privgov row also carries a step-time breakdown: `step_ms` (whole step),
`sample_ms` (drawing one Poisson batch) and `noise_ms` (one step's noise),
the latter two timed on their own with fresh generators of the same kind,
each also as process CPU time (`*_cpu_ms`), which a busy shared machine
disturbs far less than wall time. `--threads 1,2` measures each thread count:
with fewer torch threads than cores the CSPRNG's noise for the next step is
made on the spare core (SecureRandom prefetch) and leaves the critical path.
`csprng_overhead` compares each CSPRNG row with its seeded twin.
`--repeat R` runs the engine list R times, interleaved, and reports the
median (the spread is kept in `samples_per_s_runs`): on a shared machine
neighbours' load moves single runs by more than the effect measured.

Usage: python benchmarks/dp_throughput.py [--quick] [--device auto|cpu|cuda] [--tag h100] [--repeat 3]
Writes benchmarks/results/dp_throughput_<tag>.json.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import _meta  # noqa: E402  (benchmarks/ is on sys.path: a site-packages 'benchmarks' may shadow it)
from training.models import build_model  # noqa: E402
from training.insecure_random import SeededRandom, seeded_rngs  # noqa: E402  (comparison rows only)
from training.sampling import PoissonSampler  # noqa: E402
from training.secure_random import SecureRandom  # noqa: E402
from training.stepper import DPStepper  # noqa: E402

WORKLOADS = {
    "mlp_b1024": dict(kind="mlp", batch=1024, n=262144),
    "mlp_b8192": dict(kind="mlp", batch=8192, n=262144),
    "cnn_b256": dict(kind="cnn", batch=256, n=50000),
}
SIGMA, CLIP, LR = 1.0, 1.0, 0.05


def _make(kind: str, n: int, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if kind == "mlp":
        model = build_model("mlp", n_numeric=108, cardinalities=[], hidden=[512, 512], n_classes=2)
        x = torch.randn(n, 108, generator=g)
        y = torch.randint(0, 2, (n,), generator=g)
    else:
        model = build_model("cnn", n_classes=10)
        x = torch.randn(n, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
    return model, x, y


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return _meta.peak_rss_mib()


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _nonprivate_step(kind, batch, x, y, device):
    """One ordinary SGD step on a random index batch, data resident on the device."""
    model = _make(kind, 1, device)[0].to(device)
    xd, yd = x.to(device), y.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    n = xd.shape[0]

    def step() -> None:
        idx = torch.randint(0, n, (batch,), device=device)
        loss = F.cross_entropy(model(xd[idx]), yd[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_nonprivate(kind, batch, x, y, device, warmup, steps) -> dict[str, Any]:
    step = _nonprivate_step(kind, batch, x, y, device)
    for _ in range(warmup):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return {"samples_per_s": batch * steps / (time.perf_counter() - t)}


def bench_nonprivate_graph(kind, batch, x, y, device, warmup, steps) -> dict[str, Any]:
    step = _nonprivate_step(kind, batch, x, y, device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for _ in range(warmup):
        graph.replay()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        graph.replay()
    _sync(device)
    return {"samples_per_s": batch * steps / (time.perf_counter() - t)}


def bench_opacus(kind, batch, x, y, device, warmup, steps) -> dict[str, Any]:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    model = _make(kind, 1, device)[0].to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch)
    engine = PrivacyEngine(accountant="prv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, opt, loader = engine.make_private(module=model, optimizer=opt, data_loader=loader,
                                                 noise_multiplier=SIGMA, max_grad_norm=CLIP, poisson_sampling=True)
    crit = nn.CrossEntropyLoss()
    it = iter(loader)
    rows = 0
    t = None
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t, rows = time.perf_counter(), 0
        try:
            xb, yb = next(it)
        except StopIteration:
            it = iter(loader)
            xb, yb = next(it)
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad()
        loss = crit(model(xb), yb)
        loss.backward()
        opt.step()
        rows += len(xb)
    _sync(device)
    return {"samples_per_s": rows / (time.perf_counter() - t)}


def _rngs(device: torch.device, secure: bool) -> tuple[Any, Any]:
    """(sampling, noise) generators: the per-run CSPRNG, or the old seeded ones (seed 0, noise 0 + 7919)."""
    return (SecureRandom(device), SecureRandom(device, prefetch=True)) if secure else seeded_rngs(0)(device)


def _ms_per_call(fn, device: torch.device, calls: int) -> tuple[float, float]:
    """(wall ms, process CPU ms) per call."""
    fn()
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / calls * 1e3, (time.process_time() - c) / calls * 1e3


def bench_privgov(kind, batch, x, y, device, warmup, steps, graph: bool, secure: bool) -> dict[str, Any]:
    model = _make(kind, 1, device)[0].to(device)
    xd, yd = x.to(device), y.to(device)
    n = xd.shape[0]
    q = batch / n
    sample_rng, noise_rng = _rngs(device, secure)
    sampler = PoissonSampler(n, q, device=device, rng=sample_rng)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    st = DPStepper(model, [xd], yd, sampler, opt, noise_multiplier=SIGMA, max_grad_norm=CLIP,
                   expected_batch_size=batch, cuda_graph=graph, noise_rng=noise_rng)
    for _ in range(warmup):
        st.step()
    st.take_epoch_stats()
    _sync(device)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(steps):
        st.step()
    _sync(device)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    _, rows = st.take_epoch_stats()
    # Breakdown, on generators of the same kind that the measured run never sees.
    calls = max(3, min(steps, 20))
    s_rng, n_rng = _rngs(device, secure)
    if isinstance(n_rng, SecureRandom):
        n_rng.prefetch = False  # time the generator's work itself, not a prefetched hand-over
    probe = PoissonSampler(n, q, device=device, rng=s_rng)
    n_params = st.clipper.n_params
    sample_ms = _ms_per_call(probe.sample, device, calls)
    noise_ms = _ms_per_call(lambda: n_rng.normal(n_params, SIGMA * CLIP), device, calls)
    out: dict[str, Any] = {
        "samples_per_s": rows / dt, "cuda_graph_steps": st.graph_steps,
        "rng": s_rng.description, "step_ms": round(dt / steps * 1e3, 3),
        "sample_ms": round(sample_ms[0], 3), "noise_ms": round(noise_ms[0], 3),
        "step_cpu_ms": round(dc / steps * 1e3, 3),
        "sample_cpu_ms": round(sample_ms[1], 3), "noise_cpu_ms": round(noise_ms[1], 3),
        "noise_values_per_step": n_params,
    }
    if st.graph_error:
        out["cuda_graph_error"] = st.graph_error
    return out


PRIVGOV = {"privgov": (True, False), "privgov_eager": (False, False),
           "privgov_csprng": (True, True), "privgov_csprng_eager": (False, True)}  # engine: (graph, secure)


def _overheads(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per workload: what the CSPRNG costs against the old seeded generator, as a share of step time."""
    out = []
    for (old, new) in (("privgov", "privgov_csprng"), ("privgov_eager", "privgov_csprng_eager")):
        for w, t in sorted({(r["workload"], r["threads"]) for r in results}):
            a = next((r for r in results if (r["workload"], r["threads"], r["engine"]) == (w, t, old)), None)
            b = next((r for r in results if (r["workload"], r["threads"], r["engine"]) == (w, t, new)), None)
            if not (a and b):
                continue
            gen_a, gen_b = a["sample_ms"] + a["noise_ms"], b["sample_ms"] + b["noise_ms"]
            cpu_a, cpu_b = a["sample_cpu_ms"] + a["noise_cpu_ms"], b["sample_cpu_ms"] + b["noise_cpu_ms"]
            out.append({
                "workload": w, "threads": t, "engines": f"{new} vs {old}",
                "step_ms": [a["step_ms"], b["step_ms"]],
                "step_cpu_ms": [a["step_cpu_ms"], b["step_cpu_ms"]],
                "throughput_change": round(b["samples_per_s"] / a["samples_per_s"] - 1, 4),
                "step_cpu_change": round(b["step_cpu_ms"] / a["step_cpu_ms"] - 1, 4),
                "generator_ms_per_step": [round(gen_a, 3), round(gen_b, 3)],
                "generator_cpu_ms_per_step": [round(cpu_a, 3), round(cpu_b, 3)],
                "generator_extra_share_of_step": round((gen_b - gen_a) / a["step_ms"], 4),
                "generator_extra_cpu_share_of_step": round((cpu_b - cpu_a) / a["step_cpu_ms"], 4),
            })
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps, smaller data (CPU smoke run)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--tag", default=None)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--engines", default="nonprivate,nonprivate_graph,opacus_usual,privgov,privgov_csprng,"
                                         "privgov_eager,privgov_csprng_eager",
                    help="nonprivate_graph and the *_eager rows are skipped on CPU (no graphs there)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1, help="run the engine list this many times, interleaved")
    ap.add_argument("--threads", default=None,
                    help="torch intra-op threads, or a comma list to measure each (default: torch's)")
    args = ap.parse_args(argv)
    thread_counts = [int(t) for t in args.threads.split(",")] if args.threads else [torch.get_num_threads()]
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tag = args.tag or ("h100" if device.type == "cuda" and "H100" in torch.cuda.get_device_name(0) else device.type)
    results = []
    for threads, wname in ((t, w) for t in thread_counts for w in args.workloads.split(",")):
        torch.set_num_threads(threads)
        w = WORKLOADS[wname]
        n = min(w["n"], 4 * w["batch"] + 64) if args.quick else w["n"]
        warmup, steps = (2, 4) if args.quick else (20, args.steps or (200 if w["kind"] == "mlp" else 100))
        model, x, y = _make(w["kind"], n, device)
        del model
        runs: dict[str, list[dict[str, Any]]] = {}
        engines = [e for e in args.engines.split(",")
                   if device.type == "cuda" or not (e == "nonprivate_graph" or e.endswith("_eager"))]
        for _ in range(max(1, args.repeat)):
            for eng in engines:
                _reset(device)
                st = steps // 4 if eng == "opacus_usual" and not args.quick else steps
                wu = 3 if eng == "opacus_usual" and not args.quick else warmup
                if eng == "nonprivate":
                    r = bench_nonprivate(w["kind"], w["batch"], x, y, device, wu, st)
                elif eng == "nonprivate_graph":
                    r = bench_nonprivate_graph(w["kind"], w["batch"], x, y, device, wu, st)
                elif eng == "opacus_usual":
                    r = bench_opacus(w["kind"], w["batch"], x, y, device, wu, max(st, 3))
                elif eng in PRIVGOV:
                    graph, secure = PRIVGOV[eng]
                    r = bench_privgov(w["kind"], w["batch"], x, y, device, wu, st, graph=graph, secure=secure)
                else:
                    raise SystemExit(f"unknown engine {eng}")
                r.update(workload=wname, engine=eng, peak_mib=round(_peak(device), 1), n_rows=n, steps=st,
                         threads=threads)
                runs.setdefault(eng, []).append(r)
        base = base_graph = None
        for eng in engines:
            reps = runs[eng]
            r = dict(sorted(reps, key=lambda v: v["samples_per_s"])[len(reps) // 2])  # the median run
            if len(reps) > 1:
                r["samples_per_s_runs"] = [round(v["samples_per_s"], 1) for v in reps]
                for key in ("step_ms", "sample_ms", "noise_ms", "step_cpu_ms", "sample_cpu_ms", "noise_cpu_ms"):
                    if key in r:
                        r[key] = round(statistics.median(v[key] for v in reps), 3)
            if eng == "nonprivate":
                base = r["samples_per_s"]
            if eng == "nonprivate_graph":
                base_graph = r["samples_per_s"]
            r["ratio_to_nonprivate"] = round(r["samples_per_s"] / base, 3) if base else None
            if base_graph:
                r["ratio_to_nonprivate_graph"] = round(r["samples_per_s"] / base_graph, 3)
            r["samples_per_s"] = round(r["samples_per_s"], 1)
            results.append(r)
            extra = (f"  step {r['step_ms']:.1f} ms = sample {r['sample_ms']:.2f} + noise {r['noise_ms']:.2f} + rest"
                     if "step_ms" in r else "")
            print(f"{wname:10s} t{threads} {eng:16s} {r['samples_per_s']:>12.0f} samples/s  x{r['ratio_to_nonprivate']}  "
                  f"peak {r['peak_mib']} MiB{extra}", flush=True)
    payload = {"benchmark": "dp_throughput", "machine": _meta.machine(),
               "versions": _meta.versions("torch", "opacus", "numpy"),
               "settings": {"device": str(device), "quick": args.quick, "sigma": SIGMA, "clip": CLIP,
                            "optimizer": "SGD(momentum=0.9)", "tf32": device.type == "cuda",
                            "repeat": args.repeat, "torch_threads": thread_counts,
                            "mlp": "108-512-512-2", "cnn": "GroupNorm CNN 3x32x32 (32-64-128)"},
               "results": results, "csprng_overhead": _overheads(results)}
    path = _meta.write_results(f"dp_throughput_{tag}.json", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
