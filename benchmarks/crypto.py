"""Benchmark: privgov STREAM encryption (file to file) against one-shot AES-256-GCM.

Why: streaming must cost little next to a single AESGCM call on the same bytes
(target ≥ 0.9× its throughput) while keeping peak memory independent of the
payload size. Throughput is measured for all engines in this one process, on the
same source bytes; peak memory is measured per engine in a fresh subprocess
(``ru_maxrss``) at two sizes so the size-independence is visible in the numbers.

    python benchmarks/crypto.py [--size-mib 1024] [--small-mib 64] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _meta import machine, peak_rss_mib, versions, write_results  # noqa: E402

ENGINES = ("privgov_encrypt", "privgov_decrypt", "aesgcm_oneshot")
KEY = bytes(range(32))
AD = b"privgov:dataset=bench;version=1;kind=data"
MIB = 1 << 20


def _make_source(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 16 * MIB)
            fh.write(os.urandom(n))
            left -= n


def run_engine(engine: str, src: Path, work: Path, chunk_size: int) -> float:
    """Run one engine once; return wall seconds. Input is on disk (page cache) for all engines."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from governance.storage.crypto import decrypt_stream, encrypt_stream, fixed_key

    enc, dec = work / "data.enc", work / "data.dec"
    if engine == "privgov_encrypt":
        t = time.perf_counter()
        with open(src, "rb") as fi, open(enc, "wb") as fo:
            encrypt_stream(fi, fo, KEY, key_id="dk-1", wrapped_key=b"", associated=AD, chunk_size=chunk_size)
        return time.perf_counter() - t
    if engine == "privgov_decrypt":
        if not enc.exists():
            run_engine("privgov_encrypt", src, work, chunk_size)
        t = time.perf_counter()
        with open(enc, "rb") as fi, open(dec, "wb") as fo:
            decrypt_stream(fi, fo, fixed_key(KEY), associated=AD)
        return time.perf_counter() - t
    if engine == "aesgcm_oneshot":
        data = src.read_bytes()  # not timed: one-shot needs the whole payload in memory first
        t = time.perf_counter()
        out = AESGCM(KEY).encrypt(os.urandom(12), data, AD)
        elapsed = time.perf_counter() - t
        del out
        return elapsed
    raise SystemExit(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


def cipher_ceiling(size: int) -> float:
    """Bytes/s of AESGCM.encrypt_into a pre-touched buffer: the cipher alone, no allocation or I/O."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data, out = os.urandom(size), bytearray(size + 16)
    aead = AESGCM(KEY)
    aead.encrypt_into(os.urandom(12), data, AD, out)  # warm-up, touches every page
    t = time.perf_counter()
    aead.encrypt_into(os.urandom(12), data, AD, out)
    return size / (time.perf_counter() - t)


def _own_peak_mib() -> float:
    """High-water RSS of this process image (VmHWM).

    Why not ``ru_maxrss``: Linux carries it over from the parent through fork and
    exec, so a worker started by a large parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return peak_rss_mib()


def _peak_in_subprocess(engine: str, src: Path, work: Path, chunk_size: int) -> float:
    """Peak RSS (MiB) of a fresh interpreter that runs only ``engine`` once."""
    if engine == "privgov_decrypt" and not (work / "data.enc").exists():
        run_engine("privgov_encrypt", src, work, chunk_size)
    cmd = [sys.executable, __file__, "--worker", engine, "--src", str(src), "--work", str(work),
           "--chunk-size", str(chunk_size)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["peak_mib"])


def _baseline_mib() -> float:
    code = ("import sys; sys.path[:0] = [%r, %r]; import governance.storage.crypto, crypto; "
            "print(crypto._own_peak_mib())") % (str(ROOT), str(ROOT / "benchmarks"))
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                text=True).stdout.strip())


def measure(size_mib: int, chunk_size: int, repeats: int, tmp: Path) -> list[dict]:
    work = tmp / f"s{size_mib}"
    work.mkdir()
    src = work / "data.bin"
    _make_source(src, size_mib * MIB)
    size = size_mib * MIB
    best = {e: float("inf") for e in ENGINES}
    for _ in range(repeats):  # interleaved so background load hits every engine alike
        for engine in ENGINES:
            best[engine] = min(best[engine], run_engine(engine, src, work, chunk_size))
    rows = []
    for engine in ENGINES:
        rows.append({
            "engine": engine, "bytes": size, "chunk_size": chunk_size if engine != "aesgcm_oneshot" else None,
            "seconds": round(best[engine], 4), "bytes_per_s": round(size / best[engine]),
            "peak_mib": round(_peak_in_subprocess(engine, src, work, chunk_size), 1),
        })
    for f in work.iterdir():
        f.unlink()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="payload size for the main run")
    ap.add_argument("--small-mib", type=int, default=64, help="second, smaller size for the memory comparison")
    ap.add_argument("--chunk-size", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=2, help="best of N timed runs per engine")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        seconds = run_engine(args.worker, args.src, args.work, args.chunk_size)
        print(json.dumps({"engine": args.worker, "seconds": seconds, "peak_mib": _own_peak_mib()}))
        return

    with tempfile.TemporaryDirectory(prefix="privgov-bench-") as tmp:
        results = []
        for size in sorted({args.small_mib, args.size_mib}):
            results += measure(size, args.chunk_size, args.repeats, Path(tmp))
    big = {r["engine"]: r for r in results if r["bytes"] == args.size_mib * MIB}
    small = {r["engine"]: r for r in results if r["bytes"] == args.small_mib * MIB}
    summary = {
        "encrypt_vs_oneshot": round(big["privgov_encrypt"]["bytes_per_s"] / big["aesgcm_oneshot"]["bytes_per_s"], 3),
        "decrypt_vs_oneshot": round(big["privgov_decrypt"]["bytes_per_s"] / big["aesgcm_oneshot"]["bytes_per_s"], 3),
        "aesgcm_encrypt_into_prefaulted_bytes_per_s": round(cipher_ceiling(args.small_mib * MIB)),
        "interpreter_baseline_mib": round(_baseline_mib(), 1),
        "peak_mib_by_size": {e: {f"{args.small_mib}MiB": small[e]["peak_mib"], f"{args.size_mib}MiB": big[e]["peak_mib"]}
                             for e in ENGINES},
    }
    payload = {
        "benchmark": "crypto",
        "description": "privgov STREAM AES-256-GCM file-to-file (encrypt, decrypt) vs one-shot AESGCM.encrypt "
                       "on the same bytes in memory; throughput best-of-N in one process, peak_mib = ru_maxrss "
                       "(VmHWM) of a fresh subprocess running only that engine",
        "machine": machine(),
        "versions": versions("cryptography", "privgov"),
        "parameters": {"size_mib": args.size_mib, "small_mib": args.small_mib, "chunk_size": args.chunk_size,
                       "repeats": args.repeats},
        "results": results,
        "summary": summary,
    }
    path = write_results("crypto.json", payload)
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
