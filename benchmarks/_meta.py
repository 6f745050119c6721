"""Shared benchmark metadata: which machine and which versions produced a number.

Why: a throughput figure without the machine and library versions beside it
cannot be compared or reproduced. Every benchmark writes `machine` and
`versions` from here into its JSON under benchmarks/results/.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def results_dir() -> Path:
    """benchmarks/results, or $PRIVGOV_BENCH_RESULTS (smoke runs in tests must not touch the repo)."""
    env = os.environ.get("PRIVGOV_BENCH_RESULTS")
    return Path(env) if env else RESULTS


def code_version() -> str:
    """The commit the numbers were produced with (`+dirty` when the tree had changes)."""
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "unknown") + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "code_version": code_version(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_total_kib"] = int(fh.readline().split()[1])
    except OSError:
        pass
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def versions(*packages: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux `clear_refs` 5), so a later reading is one section's peak.

    Why: ru_maxrss only grows, so after the first big engine every later row
    would report that engine's peak. False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mib(field: str = "VmHWM") -> float:
    """VmHWM (peak since the last reset) or VmRSS (now) of this process, MiB; ru_maxrss where /proc is absent."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mib()


def write_results(name: str, payload: dict[str, Any], path: Path | None = None) -> Path:
    """Write under results_dir(), or to `path` when the caller names the file."""
    if path is None:
        path = results_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
