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


def interleaved_rounds(contestants: dict[str, Callable[[int, int], list[float]]], rounds: int, warmup: int,
                       iterations: int, digits: int = 1) -> dict[str, list[float]]:
    """Each round runs every contestant once (`contestant(warmup, iterations)` -> its timed ms), in an order rotated
    each round; {name: the median of each round}. Prints each round as it ends."""
    names = list(contestants)
    per_round: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            per_round[n].append(statistics.median(contestants[n](warmup, iterations)))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {per_round[n][-1]:.{digits}f}" for n in names), flush=True)
    return per_round


def round_ratio(per_round: dict[str, list[float]], x: str, y: str) -> float | None:
    """x against y: the median over rounds of x / y within each round (None where either did not run)."""
    if x not in per_round or y not in per_round:
        return None
    return statistics.median(p / q for p, q in zip(per_round[x], per_round[y]))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def write_table(name: str, title: str, command: str, header: list[str], rows: list[list[object]],
                notes: list[str] = (), ratios: dict[str, tuple[float, str]] | None = None) -> Path:
    """A markdown table with the command that produced it and when/where it ran.

    ratios: {name: (value, "lower" | "higher" is better)}, the figures `make bench` compares with the last committed
    ones (benchmarks/regressions.py), written beside the table as NAME.json with the CPU they were measured on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Produced by `{command}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{platform.machine()}, {_cpu()} (shared, noisy machine: compare ratios, "
             "not absolute times).", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in r) + " |")
    lines += [""] + [f"- {n}" for n in notes]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    if ratios:
        import json

        figures = {k: {"value": float(v), "better": better} for k, (v, better) in ratios.items()
                   if isinstance(v, (int, float)) and v == v}
        (RESULTS / f"{name}.json").write_text(json.dumps(
            {"command": command, "measured_at": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             "cpu": _cpu(), "figures": figures}, indent=1) + "\n")
    print(path.read_text())
    return path
