"""Helpers shared by the benchmark scripts: timing loops in-process and writing result tables."""

from __future__ import annotations

import datetime as dt
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def _cpu() -> str:
    """This machine's CPU with the features that decide the kernels: "AMD EPYC (AVX2, FMA)"."""
    from device_runners.devinfo import host_cpu_features, host_cpu_name

    feats = host_cpu_features()
    return (host_cpu_name() or platform.processor() or "cpu") + (f" ({', '.join(feats)})" if feats else "")


def time_ms(fn: Callable[[], object], warmup: int = 5, iterations: int = 30) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def write_table(name: str, title: str, command: str, header: list[str], rows: list[list[object]],
                notes: list[str] = ()) -> Path:
    """A markdown table with the command that produced it and when/where it ran."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Produced by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{platform.machine()}, {_cpu()} (shared, noisy machine: compare ratios, "
             "not absolute times).", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in r) + " |")
    lines += [""] + [f"- {n}" for n in notes]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())
    return path
