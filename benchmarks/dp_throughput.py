"""DP training throughput, like for like: privgov vs the same non-private step vs Opacus.

Why: a ratio is only a promise if both sides run the same way. The H100 file
of 2026-11 compared privgov replaying a CUDA graph with an eager non-private
step (3.01x); eager against eager it was 0.39x. So every engine here has an
execution *mode*, and every ratio is taken against the non-private step run
in the mode the engine actually used:

* `eager`      - ordinary PyTorch: one kernel launch per op, Python per step.
* `cuda_graph` - the whole step captured once and replayed (CUDA only).
* `compile`    - `torch.compile(model)` (inductor, default mode).

Engines (same process, same model, same data, SGD momentum 0.9):

* `nonprivate_eager`, `nonprivate_graph`, `nonprivate_compile` - data
  resident on the device, random index batches; the baselines.
* `opacus_usual` - TensorDataset + DataLoader + PrivacyEngine.make_private
  with Poisson sampling, as Opacus' README wires it (eager; anchor).
* `opacus_ghost` - Opacus' ghost clipping (GradSampleModuleFastGradientClipping)
  on the same device-resident Poisson batches and per-run CSPRNG as privgov
  (eager; anchor: the guide's "Opacus ghost clipping + Poisson on GPU").
* `privgov_eager`, `privgov_graph` - training.stepper.DPStepper: Poisson
  sampling on the device, book-keeping clipping, the per-run ChaCha20
  generator (training/secure_random.py) that governed runs use; `_graph`
  replays CUDA graphs (training/stepper.py). privgov has no torch.compile
  mode, so nothing is paired with `nonprivate_compile`; it only enters the
  headline as a candidate for the best non-private figure.
* `privgov_eager_oldrng`, `privgov_graph_oldrng` - the same steps with the
  OLD seeded torch.Generator (training/insecure_random.py): NOT private
  (issue 11); kept only so the secure generator is measured side by side
  against it (`rng_comparison`, goal: within 5%).

Per workload (and thread count) the JSON has `like_for_like` (one ratio per
mode both sides ran), `headline` (the best CSPRNG privgov row against the
best non-private row of ANY mode: the figure to quote) and `rng_comparison`.
Every row records its peak memory: on CUDA `torch.cuda.max_memory_allocated`
after freeing the previous engine (gc.collect + empty_cache; an engine's
leftovers, e.g. Opacus' per-sample gradients kept alive by reference cycles,
otherwise count against the next one - this is what made privgov look 8x
non-private on the H100); on CPU the process peak RSS (VmHWM, reset before
each engine), labelled as such in `peak_kind`. `start_mib` is what was
already held when the engine started, so a leak shows.

Each privgov row also carries a step-time breakdown: `step_ms`, `sample_ms`
(drawing one Poisson batch), `noise_ms` (one step's noise), timed on fresh
generators of the same kind, also as process CPU time (`*_cpu_ms`).
`--repeat R` runs the engine list R times, interleaved, and reports the
median (spread in `samples_per_s_runs`). Engines a device cannot run are
listed in `skipped` with the reason, engines that raised in `failed` with
the error (the other rows are still written), so an unmeasured figure shows.

Usage: python benchmarks/dp_throughput.py [--quick] [--device auto|cpu|cuda] [--repeat 3]
                                          [--out benchmarks/results/dp_throughput_h200.json]
Without --out it writes benchmarks/results/dp_throughput_<tag>.json (tag: --tag, else the GPU model or cpu).
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import _meta  # noqa: E402  (benchmarks/ is on sys.path: a site-packages 'benchmarks' may shadow it)
from training.models import build_model  # noqa: E402
from training.insecure_random import seeded_rngs  # noqa: E402  (comparison rows only)
from training.sampling import PoissonSampler  # noqa: E402
from training.secure_random import SecureRandom  # noqa: E402
from training.stepper import DPStepper  # noqa: E402

WORKLOADS = {
    "mlp_b1024": dict(kind="mlp", batch=1024, n=262144),
    "mlp_b8192": dict(kind="mlp", batch=8192, n=262144),
    "cnn_b256": dict(kind="cnn", batch=256, n=50000),
}
SIGMA, CLIP, LR = 1.0, 1.0, 0.05
QUICK_BATCH = 256  # --quick caps the batch: a smoke run checks code paths, not the workload's figures
GOAL_RNG = 0.05  # the secure generator may cost at most 5% throughput against the old one


@dataclass(frozen=True)
class Engine:
    family: str          # nonprivate | opacus | privgov
    mode: str            # eager | cuda_graph | compile (what it asks for; a graph may fall back)
    secure: bool = True  # privgov/opacus_ghost: CSPRNG (True) or the old seeded generator


ENGINES: dict[str, Engine] = {
    "nonprivate_eager": Engine("nonprivate", "eager"),
    "nonprivate_graph": Engine("nonprivate", "cuda_graph"),
    "nonprivate_compile": Engine("nonprivate", "compile"),
    "opacus_usual": Engine("opacus", "eager"),
    "opacus_ghost": Engine("opacus", "eager"),
    "privgov_eager": Engine("privgov", "eager"),
    "privgov_graph": Engine("privgov", "cuda_graph"),
    "privgov_eager_oldrng": Engine("privgov", "eager", secure=False),
    "privgov_graph_oldrng": Engine("privgov", "cuda_graph", secure=False),
}
BASELINE = {"eager": "nonprivate_eager", "cuda_graph": "nonprivate_graph", "compile": "nonprivate_compile"}


def skip_reason(name: str, device: torch.device, explicit: bool) -> str | None:
    """Why `name` is not run on `device` (None: run it)."""
    eng = ENGINES[name]
    if eng.mode == "cuda_graph" and device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if eng.mode == "compile" and device.type != "cuda" and not explicit:
        return "torch.compile takes minutes on a CPU; name it in --engines to run it anyway"
    return None


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


class Memory:
    """Peak memory of one engine, measured from a clean start."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            self.kind = "torch.cuda.max_memory_allocated (tensors on the GPU; data, model, optimizer, step)"
        elif _meta.reset_peak_rss():
            self.kind = ("CPU: process peak RSS (VmHWM, reset before the engine): includes the interpreter, "
                         "libraries and the data; not comparable with GPU figures")
        else:
            self.kind = "CPU: process peak RSS since start (could not reset): an upper bound only"

    def start(self) -> float:
        """Free the previous engine's leftovers (reference cycles too), then reset the peak."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            return torch.cuda.memory_allocated() / 2**20
        _meta.reset_peak_rss()
        return _meta.rss_mib("VmRSS")

    def peak(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated() / 2**20
        return _meta.rss_mib("VmHWM")


def _timed(step: Callable[[], Any], device: torch.device, batch: int, warmup: int, steps: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return {"samples_per_s": batch * steps / (time.perf_counter() - t), "warmup_s": round(t - t0, 3)}


def _nonprivate_step(kind: str, batch: int, x: torch.Tensor, y: torch.Tensor, device: torch.device,
                     compile_model: bool = False) -> Callable[[], None]:
    """One ordinary SGD step on a random index batch, data resident on the device."""
    model = _make(kind, 1, device)[0].to(device)
    fwd = torch.compile(model) if compile_model else model
    xd, yd = x.to(device), y.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    n = xd.shape[0]

    def step() -> None:
        idx = torch.randint(0, n, (batch,), device=device)
        loss = F.cross_entropy(fwd(xd[idx]), yd[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench_nonprivate(kind, batch, x, y, device, warmup, steps, mode: str) -> dict[str, Any]:
    if mode == "compile":
        step = _nonprivate_step(kind, batch, x, y, device, compile_model=True)
        r = _timed(step, device, batch, max(warmup, 2), steps)
        r["compile_and_warmup_s"] = r.pop("warmup_s")
        return r
    step = _nonprivate_step(kind, batch, x, y, device)
    if mode == "eager":
        return _timed(step, device, batch, warmup, steps)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return _timed(graph.replay, device, batch, warmup, steps)


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
    t = time.perf_counter()
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


def bench_stepper(kind, batch, x, y, device, warmup, steps, *, graph: bool, secure: bool,
                  clipping: str = "bookkeeping") -> dict[str, Any]:
    """privgov's DPStepper (book-keeping), or the same loop with Opacus' ghost clipping (`clipping='ghost'`)."""
    model = _make(kind, 1, device)[0].to(device)
    xd, yd = x.to(device), y.to(device)
    n = xd.shape[0]
    q = batch / n
    sample_rng, noise_rng = _rngs(device, secure)
    sampler = PoissonSampler(n, q, device=device, rng=sample_rng)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    st = DPStepper(model, [xd], yd, sampler, opt, noise_multiplier=SIGMA, max_grad_norm=CLIP,
                   expected_batch_size=batch, cuda_graph=graph, noise_rng=noise_rng, clipping=clipping)
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
        "mode_used": "cuda_graph" if st.graph_steps else "eager",
        "rng": s_rng.description, "step_ms": round(dt / steps * 1e3, 3),
        "sample_ms": round(sample_ms[0], 3), "noise_ms": round(noise_ms[0], 3),
        "step_cpu_ms": round(dc / steps * 1e3, 3),
        "sample_cpu_ms": round(sample_ms[1], 3), "noise_cpu_ms": round(noise_ms[1], 3),
        "noise_values_per_step": n_params,
    }
    if st.graph_error:
        out["cuda_graph_error"] = st.graph_error
    return out


def run_engine(name: str, kind: str, batch: int, x, y, device, warmup: int, steps: int) -> dict[str, Any]:
    eng = ENGINES[name]
    if eng.family == "nonprivate":
        r = bench_nonprivate(kind, batch, x, y, device, warmup, steps, eng.mode)
    elif name == "opacus_usual":
        r = bench_opacus(kind, batch, x, y, device, warmup, steps)
    elif name == "opacus_ghost":
        r = bench_stepper(kind, batch, x, y, device, warmup, steps, graph=False, secure=True, clipping="ghost")
        r["clipping"] = "opacus GradSampleModuleFastGradientClipping (ghost), Poisson batches on the device"
    else:
        r = bench_stepper(kind, batch, x, y, device, warmup, steps, graph=eng.mode == "cuda_graph",
                          secure=eng.secure)
    r.setdefault("mode_used", eng.mode)
    return r


def _median_row(reps: list[dict[str, Any]]) -> dict[str, Any]:
    r = dict(sorted(reps, key=lambda v: v["samples_per_s"])[len(reps) // 2])
    if len(reps) > 1:
        r["samples_per_s_runs"] = [round(v["samples_per_s"], 1) for v in reps]
        for key in ("step_ms", "sample_ms", "noise_ms", "step_cpu_ms", "sample_cpu_ms", "noise_cpu_ms"):
            if key in r:
                r[key] = round(statistics.median(v[key] for v in reps), 3)
        r["peak_mib"] = max(v["peak_mib"] for v in reps)
    return r


def pair_with_baselines(rows: list[dict[str, Any]]) -> None:
    """Give each row the non-private row of the mode it actually ran in, and the ratios to it."""
    by_engine = {r["engine"]: r for r in rows}
    for r in rows:
        base = by_engine.get(BASELINE[r["mode_used"]])
        r["baseline"] = base["engine"] if base else None
        r["ratio_to_baseline"] = round(r["samples_per_s"] / base["samples_per_s"], 3) if base else None
        r["peak_ratio_to_baseline"] = round(r["peak_mib"] / base["peak_mib"], 3) if base and base["peak_mib"] else None


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """like_for_like (per mode), headline (best CSPRNG privgov vs best non-private of any mode)."""
    fam = {r["engine"]: ENGINES[r["engine"]] for r in rows}
    nonpriv = [r for r in rows if fam[r["engine"]].family == "nonprivate"]
    priv = [r for r in rows if fam[r["engine"]].family == "privgov" and fam[r["engine"]].secure]
    like = [{"mode": r["mode_used"], "privgov": r["engine"], "nonprivate": r["baseline"],
             "ratio": r["ratio_to_baseline"], "peak_ratio": r["peak_ratio_to_baseline"]}
            for r in priv if r["baseline"]]
    out: dict[str, Any] = {"like_for_like": like}
    if nonpriv and priv:
        bp = max(priv, key=lambda r: r["samples_per_s"])
        bn = max(nonpriv, key=lambda r: r["samples_per_s"])
        if not bp["baseline"]:  # the best privgov ran in a mode no non-private row ran in: no fair headline
            out["headline"] = {"ratio": None, "privgov": bp["engine"], "privgov_mode": bp["mode_used"],
                               "why": f"no non-private row ran in mode {bp['mode_used']!r}; add "
                                      f"{BASELINE[bp['mode_used']]} to --engines"}
            return out
        out["headline"] = {
            "privgov": bp["engine"], "privgov_mode": bp["mode_used"], "privgov_samples_per_s": bp["samples_per_s"],
            "nonprivate": bn["engine"], "nonprivate_mode": bn["mode_used"],
            "nonprivate_samples_per_s": bn["samples_per_s"],
            "ratio": round(bp["samples_per_s"] / bn["samples_per_s"], 3),
            "note": "best privgov with the per-run CSPRNG (what governed runs use) against the best non-private "
                    "row of any mode measured here",
        }
    return out


def rng_comparison(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The secure generator against the old seeded one, same step, same mode; goal: within 5%."""
    by_engine = {r["engine"]: r for r in rows}
    out = []
    for new_name, old_name in (("privgov_eager", "privgov_eager_oldrng"), ("privgov_graph", "privgov_graph_oldrng")):
        a, b = by_engine.get(old_name), by_engine.get(new_name)
        if not (a and b):
            continue
        change = b["samples_per_s"] / a["samples_per_s"] - 1
        gen_a, gen_b = a["sample_ms"] + a["noise_ms"], b["sample_ms"] + b["noise_ms"]
        cpu_a, cpu_b = a["sample_cpu_ms"] + a["noise_cpu_ms"], b["sample_cpu_ms"] + b["noise_cpu_ms"]
        out.append({
            "engines": f"{new_name} vs {old_name}", "mode": b["mode_used"],
            "samples_per_s": [a["samples_per_s"], b["samples_per_s"]],
            "step_ms": [a["step_ms"], b["step_ms"]], "step_cpu_ms": [a["step_cpu_ms"], b["step_cpu_ms"]],
            "peak_mib": [a["peak_mib"], b["peak_mib"]],
            "throughput_change": round(change, 4),
            "step_cpu_change": round(b["step_cpu_ms"] / a["step_cpu_ms"] - 1, 4),
            "generator_ms_per_step": [round(gen_a, 3), round(gen_b, 3)],
            "generator_cpu_ms_per_step": [round(cpu_a, 3), round(cpu_b, 3)],
            "generator_extra_share_of_step": round((gen_b - gen_a) / a["step_ms"], 4),
            "goal": f"CSPRNG throughput within {GOAL_RNG:.0%} of the old generator",
            "goal_met": change >= -GOAL_RNG,
        })
    return out


def _tag(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(0)
    return next((t.lower() for t in ("H100", "H200", "A100", "B200", "L40S") if t in name), "cuda")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"few steps, batch <= {QUICK_BATCH}, 4 batches of data (CPU smoke run; not a figure)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--tag", default=None, help="file name part when --out is not given")
    ap.add_argument("--out", type=Path, default=None, help="write the JSON here")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--engines", default=None,
                    help=f"comma list from {','.join(ENGINES)} (default: all the device can run)")
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
    asked = args.engines.split(",") if args.engines else list(ENGINES)
    unknown = [e for e in asked if e not in ENGINES]
    if unknown:
        raise SystemExit(f"--engines: unknown {unknown}; expected some of {list(ENGINES)}")
    skipped = {e: why for e in asked if (why := skip_reason(e, device, explicit=bool(args.engines)))}
    engines = [e for e in asked if e not in skipped]
    mem = Memory(device)
    results, workloads, failed = [], [], {}
    for threads, wname in ((t, w) for t in thread_counts for w in args.workloads.split(",")):
        torch.set_num_threads(threads)
        w = WORKLOADS[wname]
        batch = min(w["batch"], QUICK_BATCH) if args.quick else w["batch"]
        n = min(w["n"], 4 * batch + 64) if args.quick else w["n"]
        warmup, steps = (2, 4) if args.quick else (20, args.steps or (200 if w["kind"] == "mlp" else 100))
        _, x, y = _make(w["kind"], n, device)
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(max(1, args.repeat)):
            for eng in engines:
                slow = eng == "opacus_usual" and not args.quick
                st, wu = (max(steps // 4, 3), 3) if slow else (steps, warmup)
                start = mem.start()
                try:
                    r = run_engine(eng, w["kind"], batch, x, y, device, wu, st)
                except Exception as exc:  # one broken engine must not cost the other rows of a GPU session
                    failed[f"{wname}/t{threads}/{eng}"] = f"{type(exc).__name__}: {exc}"[:500]
                    print(f"{wname:10s} t{threads} {eng:22s} FAILED {failed[f'{wname}/t{threads}/{eng}']}", flush=True)
                    continue
                r.update(workload=wname, engine=eng, mode=ENGINES[eng].mode, threads=threads, n_rows=n, steps=st,
                         batch=batch, start_mib=round(start, 1), peak_mib=round(mem.peak(), 1))
                runs.setdefault(eng, []).append(r)
        rows = [_median_row(runs[e]) for e in engines if e in runs]
        for r in rows:
            r["samples_per_s"] = round(r["samples_per_s"], 1)
        pair_with_baselines(rows)
        results.extend(rows)
        summary = {"workload": wname, "threads": threads, **summarise(rows), "rng_comparison": rng_comparison(rows)}
        workloads.append(summary)
        for r in rows:
            extra = (f"  step {r['step_ms']:.1f} ms = sample {r['sample_ms']:.2f} + noise {r['noise_ms']:.2f} + rest"
                     if "step_ms" in r else "")
            print(f"{wname:10s} t{threads} {r['engine']:22s} {r['mode_used']:10s} {r['samples_per_s']:>12.0f}/s "
                  f"x{r['ratio_to_baseline']} vs {r['baseline']}  peak {r['peak_mib']} MiB{extra}", flush=True)
        if "headline" in summary:
            h = summary["headline"]
            print(f"{wname:10s} t{threads} headline {h['privgov']} / {h['nonprivate']} = x{h['ratio']}", flush=True)
    payload = {"benchmark": "dp_throughput", "machine": _meta.machine(),
               "versions": _meta.versions("torch", "opacus", "numpy"),
               "settings": {"device": str(device), "quick": args.quick, "sigma": SIGMA, "clip": CLIP,
                            "optimizer": "SGD(momentum=0.9)", "tf32": device.type == "cuda",
                            "repeat": args.repeat, "torch_threads": thread_counts,
                            "mlp": "108-512-512-2", "cnn": "GroupNorm CNN 3x32x32 (32-64-128)",
                            "peak_kind": mem.kind},
               "fairness": "every ratio_to_baseline is against the non-private step in the mode the row actually "
                           "ran (eager/eager, cuda_graph/cuda_graph); quote `workloads[].headline`",
               "skipped": skipped, "failed": failed, "workloads": workloads, "results": results}
    path = _meta.write_results(f"dp_throughput_{args.tag or _tag(device)}.json", payload, args.out)
    print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
