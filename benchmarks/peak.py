"""This CPU's measured peak: fp32 FMA GFLOP/s (and int8 dot-product GOP/s where it has VNNI) on 1..N threads.

    .venv/bin/python benchmarks/peak.py [--threads 2]

A floor built on a clock read from /proc/cpuinfo is wrong where the clock is not there (a VM without `cpu MHz`) or
not the one the core runs at (turbo, a cap); benchmarks/peak.cpp times independent FMA chains instead, compiled
here with -O3 -march=native (cached by the source's hash), best of five tries per thread count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def measured_peak(threads: int = 2, iterations: int = 20_000_000) -> dict:
    """{"lanes", "fp32_gflops": [1 thread, 2 threads, ...], "int8_vnni_gops": [...] or None}."""
    from common.files import cache_dir

    src = HERE / "peak.cpp"
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise SystemExit("benchmarks/peak.py needs a C++ compiler (g++) to measure this CPU's peak")
    key = hashlib.sha256(src.read_bytes() + cxx.encode()).hexdigest()[:16]
    exe = cache_dir("peak") / f"peak-{key}"
    if not exe.is_file():
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_name(exe.name + ".tmp")
        subprocess.run([cxx, "-O3", "-march=native", "-pthread", "-o", str(tmp), str(src)], check=True)
        tmp.replace(exe)
    out = subprocess.run([str(exe), str(threads), str(iterations)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> int:
    from benchmarks.common import write_table

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    peak = measured_peak(a.threads)
    rows = [[t + 1, f"{peak['fp32_gflops'][t]:.1f}",
             f"{peak['int8_vnni_gops'][t]:.1f}" if peak["int8_vnni_gops"] else "no VNNI"] for t in range(a.threads)]
    write_table("peak", "This CPU's measured peak", f"python benchmarks/peak.py --threads {a.threads}",
                ["threads", "fp32 FMA GFLOP/s", "int8 VNNI GOP/s"], rows,
                [f"{peak['lanes']} fp32 lanes per vector; 12 independent FMA chains per thread, best of 5 tries",
                 "int8: one multiply and one add per byte pair of vpdpbusd (AVX512-VNNI or AVX-VNNI); without VNNI "
                 "XNNPACK's int8 kernels go through 16-bit multiplies, so no int8 peak is claimed"],
                ratios={f"fp32_gflops_{t + 1}t": (peak["fp32_gflops"][t], "higher") for t in range(a.threads)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
