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
                   per batch-size bucket, see training/stepper.py).
* `privgov_eager`- the same without the CUDA graph (shows what the graph buys).

Usage: python benchmarks/dp_throughput.py [--quick] [--device auto|cpu|cuda] [--tag h100]
Writes benchmarks/results/dp_throughput_<tag>.json.
"""
from __future__ import annotations

import argparse
import math
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
from training.sampling import PoissonSampler  # noqa: E402
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


def bench_privgov(kind, batch, x, y, device, warmup, steps, graph: bool) -> dict[str, Any]:
    model = _make(kind, 1, device)[0].to(device)
    xd, yd = x.to(device), y.to(device)
    n = xd.shape[0]
    q = batch / n
    sampler = PoissonSampler(n, q, device=device, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    st = DPStepper(model, [xd], yd, sampler, opt, noise_multiplier=SIGMA, max_grad_norm=CLIP,
                   expected_batch_size=batch, cuda_graph=graph)
    for _ in range(warmup):
        st.step()
    st.take_epoch_stats()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        st.step()
    _sync(device)
    dt = time.perf_counter() - t
    _, rows = st.take_epoch_stats()
    out: dict[str, Any] = {"samples_per_s": rows / dt, "cuda_graph_steps": st.graph_steps}
    if st.graph_error:
        out["cuda_graph_error"] = st.graph_error
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps, smaller data (CPU smoke run)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--tag", default=None)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--engines", default="nonprivate,nonprivate_graph,opacus_usual,privgov,privgov_eager",
                    help="nonprivate_graph is skipped on CPU")
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tag = args.tag or ("h100" if device.type == "cuda" and "H100" in torch.cuda.get_device_name(0) else device.type)
    results = []
    for wname in args.workloads.split(","):
        w = WORKLOADS[wname]
        n = min(w["n"], 4 * w["batch"] + 64) if args.quick else w["n"]
        warmup, steps = (2, 4) if args.quick else (20, args.steps or (200 if w["kind"] == "mlp" else 100))
        model, x, y = _make(w["kind"], n, device)
        del model
        base = base_graph = None
        for eng in args.engines.split(","):
            if eng == "nonprivate_graph" and device.type != "cuda":
                continue
            _reset(device)
            st = steps // 4 if eng == "opacus_usual" and not args.quick else steps
            wu = 3 if eng == "opacus_usual" and not args.quick else warmup
            if eng == "nonprivate":
                r = bench_nonprivate(w["kind"], w["batch"], x, y, device, wu, st)
            elif eng == "nonprivate_graph":
                r = bench_nonprivate_graph(w["kind"], w["batch"], x, y, device, wu, st)
            elif eng == "opacus_usual":
                r = bench_opacus(w["kind"], w["batch"], x, y, device, wu, max(st, 3))
            elif eng in ("privgov", "privgov_eager"):
                r = bench_privgov(w["kind"], w["batch"], x, y, device, wu, st, graph=eng == "privgov")
            else:
                raise SystemExit(f"unknown engine {eng}")
            r.update(workload=wname, engine=eng, peak_mib=round(_peak(device), 1), n_rows=n, steps=st)
            if eng == "nonprivate":
                base = r["samples_per_s"]
            if eng == "nonprivate_graph":
                base_graph = r["samples_per_s"]
            r["ratio_to_nonprivate"] = round(r["samples_per_s"] / base, 3) if base else None
            if base_graph:
                r["ratio_to_nonprivate_graph"] = round(r["samples_per_s"] / base_graph, 3)
            r["samples_per_s"] = round(r["samples_per_s"], 1)
            results.append(r)
            print(f"{wname:10s} {eng:14s} {r['samples_per_s']:>12.0f} samples/s  x{r['ratio_to_nonprivate']}  "
                  f"peak {r['peak_mib']} MiB", flush=True)
    payload = {"benchmark": "dp_throughput", "machine": _meta.machine(),
               "versions": _meta.versions("torch", "opacus", "numpy"),
               "settings": {"device": str(device), "quick": args.quick, "sigma": SIGMA, "clip": CLIP,
                            "optimizer": "SGD(momentum=0.9)", "tf32": device.type == "cuda",
                            "mlp": "108-512-512-2", "cnn": "GroupNorm CNN 3x32x32 (32-64-128)"},
               "results": results}
    path = _meta.write_results(f"dp_throughput_{tag}.json", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
